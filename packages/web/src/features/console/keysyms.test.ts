import { describe, expect, it, vi } from 'vitest';
import { charToStroke, comboToKeyEvents, COMBOS, sendKeyEvents, textToKeyEvents, XK } from './keysyms';

describe('charToStroke', () => {
  it('maps letters, digits and symbols to US keys', () => {
    expect(charToStroke('a')).toEqual({ keysym: 0x61, code: 'KeyA', shift: false });
    expect(charToStroke('Z')).toEqual({ keysym: 0x5a, code: 'KeyZ', shift: true });
    expect(charToStroke('7')).toEqual({ keysym: 0x37, code: 'Digit7', shift: false });
    expect(charToStroke('&')).toEqual({ keysym: 0x26, code: 'Digit7', shift: true });
    expect(charToStroke(' ')).toEqual({ keysym: 0x20, code: 'Space', shift: false });
    expect(charToStroke('|')).toEqual({ keysym: 0x7c, code: 'Backslash', shift: true });
    expect(charToStroke('"')).toEqual({ keysym: 0x22, code: 'Quote', shift: true });
    expect(charToStroke('~')).toEqual({ keysym: 0x7e, code: 'Backquote', shift: true });
  });
  it('maps newline and tab to Return and Tab', () => {
    expect(charToStroke('\n')).toEqual({ keysym: XK.Return, code: 'Enter', shift: false });
    expect(charToStroke('\t')).toEqual({ keysym: XK.Tab, code: 'Tab', shift: false });
  });
  it('covers all printable ASCII', () => {
    for (let c = 0x20; c < 0x7f; c++) expect(charToStroke(String.fromCharCode(c)), String.fromCharCode(c)).not.toBeNull();
  });
  it('refuses what a US keyboard cannot type', () => {
    expect(charToStroke('é')).toBeNull();
    expect(charToStroke('\u0007')).toBeNull();
  });
});

describe('textToKeyEvents', () => {
  it('types "echo hi" + Enter as press/release pairs', () => {
    const { events, unsupported } = textToKeyEvents('echo hi\n');
    expect(unsupported).toEqual([]);
    expect(events).toHaveLength(16);
    expect(events.slice(0, 2)).toEqual([{ keysym: 0x65, code: 'KeyE', down: true }, { keysym: 0x65, code: 'KeyE', down: false }]);
    expect(events.at(-1)).toEqual({ keysym: XK.Return, code: 'Enter', down: false });
  });
  it('wraps shifted characters in Shift', () => {
    const { events } = textToKeyEvents('A');
    expect(events.map((e) => `${e.code}${e.down ? '↓' : '↑'}`)).toEqual(['ShiftLeft↓', 'KeyA↓', 'KeyA↑', 'ShiftLeft↑']);
  });
  it('treats CRLF as one Enter and reports unsupported characters once', () => {
    const { events, unsupported } = textToKeyEvents('a\r\nb€€');
    expect(events.filter((e) => e.code === 'Enter' && e.down)).toHaveLength(1);
    expect(unsupported).toEqual(['€']);
  });
});

describe('combos', () => {
  it('press in order and release in reverse', () => {
    const cad = COMBOS.find((c) => c.id === 'ctrl-alt-del')!;
    expect(comboToKeyEvents(cad).map((e) => `${e.code}${e.down ? '↓' : '↑'}`)).toEqual([
      'ControlLeft↓', 'AltLeft↓', 'Delete↓', 'Delete↑', 'AltLeft↑', 'ControlLeft↑',
    ]);
  });
  it('has unique ids and the common ones', () => {
    const ids = COMBOS.map((c) => c.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect(ids).toEqual(expect.arrayContaining(['ctrl-alt-del', 'ctrl-alt-f1', 'ctrl-alt-f2', 'alt-tab']));
  });
});

describe('sendKeyEvents', () => {
  it('sends all events and pauses after releases', async () => {
    const sent: string[] = [];
    const sleep = vi.fn(async () => {});
    const progress: number[] = [];
    await sendKeyEvents(textToKeyEvents('ab').events, (e) => sent.push(`${e.code}${e.down ? 1 : 0}`), { sleep, onProgress: (n) => progress.push(n) });
    expect(sent).toEqual(['KeyA1', 'KeyA0', 'KeyB1', 'KeyB0']);
    expect(sleep).toHaveBeenCalledTimes(2);
    expect(progress).toEqual([2, 4]);
  });
  it('stops on abort and releases held modifiers', async () => {
    const ctrl = new AbortController();
    const sent: string[] = [];
    const events = textToKeyEvents('AB').events;
    await sendKeyEvents(events, (e) => {
      sent.push(`${e.code}${e.down ? 1 : 0}`);
      if (sent.length === 2) ctrl.abort();
    }, { signal: ctrl.signal, sleep: async () => {} });
    expect(sent).toEqual(['ShiftLeft1', 'KeyA1', 'ShiftLeft0']);
  });
});
