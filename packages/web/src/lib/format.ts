// Formatting helpers. Binary units throughout (KiB, MiB, GiB) because that is what QEMU uses.
// Numbers and dates follow the UI language (Intl), unless a locale is given.
import { locale as uiLocale } from '../i18n';

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'] as const;

function trim(n: number): string {
  // One decimal below 10, none above; no trailing ".0"; the language's decimal sign ("1,5" in Italian).
  return new Intl.NumberFormat(uiLocale(), { maximumFractionDigits: n < 10 ? 1 : 0, useGrouping: false }).format(n);
}

/** 1536 -> "1.5 KiB"; 0 -> "0 B"; negative or non-finite -> "—". */
export function formatBytes(bytes: number | null | undefined): string {
  if (bytes == null || !Number.isFinite(bytes) || bytes < 0) return '—';
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit += 1;
  }
  if (unit === 0) return `${bytes} B`;
  // 1023.96 KiB would round to "1024 KiB"; show it as the next unit instead.
  if (Math.round(value) >= 1024 && unit < UNITS.length - 1) return `1 ${UNITS[unit + 1]}`;
  return `${trim(value)} ${UNITS[unit]}`;
}

/** Memory is stored in MiB: 512 -> "512 MiB", 2048 -> "2 GiB", 1536 -> "1.5 GiB". */
export function formatMiB(mib: number): string {
  if (!Number.isFinite(mib) || mib < 0) return '—';
  if (mib < 1024) return `${Math.round(mib)} MiB`;
  return formatBytes(mib * 1024 * 1024);
}

export function mibToGiB(mib: number): number {
  return mib / 1024;
}

/** Percentage 0..100, rounded down so that 100 means really done. */
export function percent(done: number, total: number): number {
  if (!(total > 0)) return 0;
  return Math.max(0, Math.min(100, Math.floor((done / total) * 100)));
}

/** A short human duration: "45 s", "3 min", "2 h 5 min", "3 d 4 h". */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) return '—';
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 24) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} d ${h % 24} h` : `${d} d`;
}

/** Local date and time without seconds, e.g. "28 Nov 2025, 14:30". */
export function formatDateTime(iso: string | null | undefined, locale?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString(locale ?? uiLocale(), { day: 'numeric', month: 'short', year: 'numeric', hour: '2-digit', minute: '2-digit' });
}

/** Local date and time to the second, for "exactly when" tooltips. */
export function formatExactTime(iso: string | null | undefined, locale?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return d.toLocaleString(locale ?? uiLocale(), { dateStyle: 'medium', timeStyle: 'medium' });
}

/** The file name part of a host path: "/data/isos/a.iso" -> "a.iso". */
export function basename(path: string | null | undefined): string {
  if (!path) return '';
  const parts = path.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? path;
}

/**
 * Break a long command line before each option ("-m 256 -smp 1" -> one option per line, joined
 * with " \" continuations), leaving quoted parts alone. For display; copy the original string.
 */
export function formatCommandLine(cmd: string): string {
  let out = '';
  let quote: string | null = null;
  for (let i = 0; i < cmd.length; i++) {
    const c = cmd[i]!;
    if (quote) {
      if (c === quote) quote = null;
      else if (c === '\\' && quote === '"' && i + 1 < cmd.length) {
        out += c + cmd[++i];
        continue;
      }
    } else if (c === "'" || c === '"') {
      quote = c;
    } else if (c === ' ' && cmd[i + 1] === '-' && /[A-Za-z-]/.test(cmd[i + 2] ?? '')) {
      out += ' \\\n  ';
      continue;
    }
    out += c;
  }
  return out;
}

/** "up 3 min" for a running VM, "just started" during its first minute; null when not running. */
export function uptimeLabel(startedAt: string | null, now: number, words: { upFor: (d: string) => string; justStarted: string }): string | null {
  if (!startedAt) return null;
  const started = Date.parse(startedAt);
  if (Number.isNaN(started)) return null;
  const ms = now - started;
  return ms < 60_000 ? words.justStarted : words.upFor(formatDuration(ms));
}

/** "3 min ago", "in 30 d", "just now" (within a minute either way); "—" for a missing or bad date. */
export function relativeTime(
  iso: string | null | undefined,
  now: number,
  words: { justNow: string; ago: (d: string) => string; in: (d: string) => string },
): string {
  if (!iso) return '—';
  const at = Date.parse(iso);
  if (Number.isNaN(at)) return '—';
  const ms = now - at;
  if (Math.abs(ms) < 60_000) return words.justNow;
  return ms > 0 ? words.ago(formatDuration(ms)) : words.in(formatDuration(-ms));
}
