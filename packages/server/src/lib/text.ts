/**
 * Control characters (C0, DEL, C1), line and paragraph separators and bidirectional-text controls,
 * which could forge lines or reorder what a reader sees, plus the backslash (so an escape is never
 * ambiguous).
 */
const UNSAFE = /[\\\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;

/** `a\nb` -> `a\u000ab`, `a\b` -> `a\\b`: one line of visible text, reversible. */
export function escapeControls(s: string): string {
  return s.replace(UNSAFE, (c) => (c === '\\' ? '\\\\' : `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`));
}
