// Text and key combos -> RFB key events (X11 keysyms + DOM `code`s for QEMU's scancode extension).
// Typing assumes a US keyboard layout in the guest: with the QEMU extended key event, QEMU uses
// the scancode, so characters that need Shift get an explicit Shift press around them.
import { t } from '../../i18n';

export const XK = {
  BackSpace: 0xff08,
  Tab: 0xff09,
  Return: 0xff0d,
  Escape: 0xff1b,
  Delete: 0xffff,
  Shift_L: 0xffe1,
  Control_L: 0xffe3,
  Alt_L: 0xffe9,
  Super_L: 0xffeb,
  F1: 0xffbe,
  F2: 0xffbf,
  F4: 0xffc1,
  F7: 0xffc4,
} as const;

export interface KeyEvent {
  keysym: number;
  code: string;
  down: boolean;
}

interface Stroke {
  keysym: number;
  code: string;
  shift: boolean;
}

// US layout: unshifted and shifted characters per physical key.
const US_KEYS: Array<[code: string, plain: string, shifted: string]> = [
  ['Backquote', '`', '~'], ['Digit1', '1', '!'], ['Digit2', '2', '@'], ['Digit3', '3', '#'], ['Digit4', '4', '$'],
  ['Digit5', '5', '%'], ['Digit6', '6', '^'], ['Digit7', '7', '&'], ['Digit8', '8', '*'], ['Digit9', '9', '('],
  ['Digit0', '0', ')'], ['Minus', '-', '_'], ['Equal', '=', '+'], ['BracketLeft', '[', '{'], ['BracketRight', ']', '}'],
  ['Backslash', '\\', '|'], ['Semicolon', ';', ':'], ['Quote', "'", '"'], ['Comma', ',', '<'], ['Period', '.', '>'],
  ['Slash', '/', '?'], ['Space', ' ', ''],
];

const CHAR_MAP = new Map<string, Stroke>();
for (const [code, plain, shifted] of US_KEYS) {
  CHAR_MAP.set(plain, { keysym: plain.charCodeAt(0), code, shift: false });
  if (shifted) CHAR_MAP.set(shifted, { keysym: shifted.charCodeAt(0), code, shift: true });
}
for (let c = 97; c <= 122; c++) {
  const lower = String.fromCharCode(c);
  const upper = lower.toUpperCase();
  CHAR_MAP.set(lower, { keysym: c, code: `Key${upper}`, shift: false });
  CHAR_MAP.set(upper, { keysym: c - 32, code: `Key${upper}`, shift: true });
}
CHAR_MAP.set('\n', { keysym: XK.Return, code: 'Enter', shift: false });
CHAR_MAP.set('\t', { keysym: XK.Tab, code: 'Tab', shift: false });

/** The key stroke for one character, or null when it cannot be typed on a US keyboard. */
export function charToStroke(ch: string): Stroke | null {
  return CHAR_MAP.get(ch) ?? null;
}

const SHIFT_DOWN: KeyEvent = { keysym: XK.Shift_L, code: 'ShiftLeft', down: true };
const SHIFT_UP: KeyEvent = { keysym: XK.Shift_L, code: 'ShiftLeft', down: false };

/** Key events that type `text`; characters that cannot be typed are listed (once each) and skipped. */
export function textToKeyEvents(text: string): { events: KeyEvent[]; unsupported: string[] } {
  const events: KeyEvent[] = [];
  const unsupported = new Set<string>();
  const normalized = text.replace(/\r\n?/g, '\n');
  for (const ch of normalized) {
    const s = charToStroke(ch);
    if (!s) {
      unsupported.add(ch);
      continue;
    }
    if (s.shift) events.push(SHIFT_DOWN);
    events.push({ keysym: s.keysym, code: s.code, down: true }, { keysym: s.keysym, code: s.code, down: false });
    if (s.shift) events.push(SHIFT_UP);
  }
  return { events, unsupported: [...unsupported] };
}

export interface KeyCombo {
  id: string;
  label: string;
  keys: Array<[keysym: number, code: string]>;
}

const CTRL: [number, string] = [XK.Control_L, 'ControlLeft'];
const ALT: [number, string] = [XK.Alt_L, 'AltLeft'];

export const COMBOS: KeyCombo[] = [
  { id: 'ctrl-alt-del', label: 'Ctrl+Alt+Del', keys: [CTRL, ALT, [XK.Delete, 'Delete']] },
  { id: 'ctrl-alt-f1', label: 'Ctrl+Alt+F1', keys: [CTRL, ALT, [XK.F1, 'F1']] },
  { id: 'ctrl-alt-f2', label: 'Ctrl+Alt+F2', keys: [CTRL, ALT, [XK.F2, 'F2']] },
  { id: 'ctrl-alt-f7', label: 'Ctrl+Alt+F7', keys: [CTRL, ALT, [XK.F7, 'F7']] },
  { id: 'ctrl-alt-backspace', label: 'Ctrl+Alt+Backspace', keys: [CTRL, ALT, [XK.BackSpace, 'Backspace']] },
  { id: 'alt-tab', label: 'Alt+Tab', keys: [ALT, [XK.Tab, 'Tab']] },
  { id: 'alt-f4', label: 'Alt+F4', keys: [ALT, [XK.F4, 'F4']] },
  {
    id: 'super',
    get label() {
      return t.console.superKey; // read when shown: follows a language switch
    },
    keys: [[XK.Super_L, 'MetaLeft']],
  },
  { id: 'escape', label: 'Esc', keys: [[XK.Escape, 'Escape']] },
];

/** Press every key of a combo in order, then release them in reverse order. */
export function comboToKeyEvents(combo: KeyCombo): KeyEvent[] {
  const downs = combo.keys.map(([keysym, code]) => ({ keysym, code, down: true }));
  const ups = [...combo.keys].reverse().map(([keysym, code]) => ({ keysym, code, down: false }));
  return [...downs, ...ups];
}

const MODIFIER_CODES = new Set(['ShiftLeft', 'ControlLeft', 'AltLeft', 'MetaLeft']);

/** Send events with a pause after every key release, so the guest's keyboard buffer keeps up. */
export async function sendKeyEvents(
  events: KeyEvent[],
  send: (e: KeyEvent) => void,
  opts: { delayMs?: number; signal?: AbortSignal; onProgress?: (done: number) => void; sleep?: (ms: number) => Promise<void> } = {},
): Promise<void> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const delay = opts.delayMs ?? 20;
  for (let i = 0; i < events.length; i++) {
    if (opts.signal?.aborted) {
      // Never leave a modifier held down in the guest.
      const released = new Set<string>();
      for (const e of events.slice(i)) {
        if (!e.down && MODIFIER_CODES.has(e.code) && !released.has(e.code)) {
          released.add(e.code);
          send(e);
        }
      }
      return;
    }
    const e = events[i]!;
    send(e);
    if (!e.down) {
      opts.onProgress?.(i + 1);
      if (delay > 0) await sleep(delay);
    }
  }
}
