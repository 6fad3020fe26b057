import { describe, expect, it } from 'vitest';
import { escapeControls } from './text.js';

describe('escapeControls', () => {
  it('turns C0, DEL, C1, line separators and bidi controls into \\u escapes', () => {
    expect(escapeControls('a\nb\r\tc\u0000\u001b[31m\u007f\u0085\u009f')).toBe('a\\u000ab\\u000d\\u0009c\\u0000\\u001b[31m\\u007f\\u0085\\u009f');
    expect(escapeControls('x\u2028y\u2029z\u202egnp.exe\u2066\u061c')).toBe('x\\u2028y\\u2029z\\u202egnp.exe\\u2066\\u061c');
  });
  it('escapes the backslash, so a literal "\\u000a" stays distinguishable', () => {
    expect(escapeControls('\\u000a')).toBe('\\\\u000a');
    expect(escapeControls('\n')).toBe('\\u000a');
  });
  it('leaves ordinary text alone', () => {
    expect(escapeControls('POST /api/vms/:vm_id/start')).toBe('POST /api/vms/:vm_id/start');
    expect(escapeControls('token:ci admin — ünïcode 日本')).toBe('token:ci admin — ünïcode 日本');
  });
});
