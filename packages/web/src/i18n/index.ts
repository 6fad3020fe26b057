import { useSyncExternalStore } from 'react';
import { en, type Messages } from './en';
import { it } from './it';

export type { Messages };

/** The UI's languages, each with its catalogue (it.ts must satisfy en.ts's type). */
export const catalogues = { en, it } satisfies Record<string, Messages>;
export type Lang = keyof typeof catalogues;
export const LANGS = Object.keys(catalogues) as Lang[];

const STORAGE_KEY = 'qm.lang';

function isLang(v: unknown): v is Lang {
  return typeof v === 'string' && Object.hasOwn(catalogues, v);
}

/** The language to start in: the remembered choice, else the first of the browser's languages we have, else English. */
export function pickLanguage(stored: string | null | undefined, browser: readonly string[]): Lang {
  if (isLang(stored)) return stored;
  for (const tag of browser) {
    const base = tag.toLowerCase().split('-')[0];
    if (isLang(base)) return base;
  }
  return 'en';
}

function storedLanguage(): string | null {
  try {
    return globalThis.localStorage?.getItem(STORAGE_KEY) ?? null;
  } catch {
    return null;
  }
}

function browserLanguages(): readonly string[] {
  const nav = globalThis.navigator as Navigator | undefined;
  if (!nav) return [];
  return nav.languages?.length ? nav.languages : nav.language ? [nav.language] : [];
}

let lang: Lang = pickLanguage(storedLanguage(), browserLanguages());
const listeners = new Set<() => void>();

/**
 * The active catalogue. A live view: every read goes to the current language, so components that
 * read `t.…` while rendering show the new words after `setLanguage` (the app re-renders on it).
 */
export const t: Messages = new Proxy({} as Messages, {
  get: (_target, key) => catalogues[lang][key as keyof Messages],
});

export function getLanguage(): Lang {
  return lang;
}

/** The BCP 47 locale for Intl: the browser's own tag when it is of this language (en-GB, it-CH), else the language. */
export function locale(): string {
  const own = browserLanguages().find((tag) => tag.toLowerCase().split('-')[0] === lang);
  return own ?? (lang === 'it' ? 'it-IT' : 'en');
}

/** Switches the UI's language (no reload) and remembers the choice in this browser. */
export function setLanguage(next: Lang): void {
  if (!isLang(next) || next === lang) return;
  lang = next;
  try {
    globalThis.localStorage?.setItem(STORAGE_KEY, next);
  } catch {
    /* private mode: the choice lasts for this page only */
  }
  syncDocument();
  for (const l of listeners) l();
}

function syncDocument(): void {
  if (typeof document !== 'undefined') document.documentElement.lang = lang;
}
syncDocument();

function subscribe(l: () => void): () => void {
  listeners.add(l);
  return () => listeners.delete(l);
}

/** The active language; the component re-renders when it changes. */
export function useLanguage(): Lang {
  return useSyncExternalStore(subscribe, getLanguage, getLanguage);
}

/**
 * Words for an API error: the UI's own for the codes it knows (the server's messages stay English
 * and stable), else the server's message.
 */
export function errorWords(code: string | undefined, serverMessage: string): string {
  const own = code ? (t.errorCodes as Record<string, string | undefined>)[code] : undefined;
  return own ?? serverMessage;
}
