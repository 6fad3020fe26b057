import { describe, expect, it as test } from 'vitest';
import { formatBytes, formatDateTime } from '../lib/format';
import { en } from './en';
import { catalogues, errorWords, getLanguage, LANGS, locale, pickLanguage, setLanguage, t } from './index';
import { it } from './it';

/** Every leaf of a catalogue as "path:kind" (kind = string, or function/<arity>). */
function shape(obj: unknown, prefix = ''): string[] {
  if (typeof obj === 'function') return [`${prefix}:function/${obj.length}`];
  if (typeof obj === 'string') return [`${prefix}:string`];
  if (obj && typeof obj === 'object') return Object.entries(obj).flatMap(([k, v]) => shape(v, prefix ? `${prefix}.${k}` : k));
  return [`${prefix}:${typeof obj}`];
}

function diff(a: unknown, b: unknown): { missing: string[]; extra: string[] } {
  const sa = new Set(shape(a));
  const sb = new Set(shape(b));
  return { missing: [...sa].filter((k) => !sb.has(k)), extra: [...sb].filter((k) => !sa.has(k)) };
}

describe('catalogues', () => {
  test('the Italian catalogue has exactly the English keys, each a string or a function of the same arity', () => {
    expect(shape(en).length).toBeGreaterThan(500);
    expect(diff(en, it)).toEqual({ missing: [], extra: [] });
    for (const lang of LANGS) expect(diff(en, catalogues[lang])).toEqual({ missing: [], extra: [] });
  });

  test('the comparison notices a missing and an extra key', () => {
    const { console: _console, ...withoutConsole } = it;
    expect(diff(en, withoutConsole).missing).toContain('console.reconnect:string');
    expect(diff(en, { ...it, app: { ...it.app, extra: 'x' } }).extra).toEqual(['app.extra:string']);
  });

  test('no Italian string is left empty, and the API document’s words are used', () => {
    const strings = (o: unknown): string[] =>
      typeof o === 'string' ? [o] : o && typeof o === 'object' ? Object.values(o).flatMap(strings) : [];
    const empty = strings(it).filter((v) => v.trim() === '');
    expect(empty).toEqual([]);
    expect(it.detail.openVnc).toBe('Apri Console VNC');
    expect(it.actions.settings).toBe('Impostazioni');
    expect(en.detail.openVnc).toBe('Open VNC console');
  });
});

describe('language choice', () => {
  test('a remembered choice wins, then the browser’s languages in order, then English', () => {
    expect(pickLanguage('it', ['en-US'])).toBe('it');
    expect(pickLanguage(null, ['it-IT', 'en'])).toBe('it');
    expect(pickLanguage(null, ['de-DE', 'it-CH'])).toBe('it');
    expect(pickLanguage('xx', ['fr-FR'])).toBe('en');
    expect(pickLanguage(undefined, [])).toBe('en');
  });

  test('switching changes t, the locale, numbers, dates and the words for error codes at once', () => {
    const before = getLanguage();
    try {
      setLanguage('en');
      expect(t.detail.openVnc).toBe('Open VNC console');
      expect(formatBytes(1536)).toBe('1.5 KiB');
      setLanguage('it');
      expect(getLanguage()).toBe('it');
      expect(t.detail.openVnc).toBe('Apri Console VNC');
      expect(locale().toLowerCase().startsWith('it')).toBe(true);
      expect(formatBytes(1536)).toBe('1,5 KiB');
      expect(formatDateTime('2026-03-05T10:00:00Z')).toMatch(/mar/);
      expect(errorWords('VM_NOT_FOUND', 'VM abc not found')).toBe('Questa macchina non esiste.');
      expect(errorWords('SOMETHING_ELSE', 'The server says so')).toBe('The server says so');
    } finally {
      setLanguage(before);
    }
  });
});
