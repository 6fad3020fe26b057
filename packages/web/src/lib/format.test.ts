import { describe, expect, it } from 'vitest';
import { basename, formatBytes, formatCommandLine, formatDateTime, formatDuration, formatMiB, mibToGiB, percent, relativeTime, uptimeLabel } from './format';

describe('formatBytes', () => {
  it('uses binary units', () => {
    expect(formatBytes(0)).toBe('0 B');
    expect(formatBytes(1023)).toBe('1023 B');
    expect(formatBytes(1024)).toBe('1 KiB');
    expect(formatBytes(1536)).toBe('1.5 KiB');
    expect(formatBytes(10 * 1024 * 1024)).toBe('10 MiB');
    expect(formatBytes(32212254720)).toBe('30 GiB');
    expect(formatBytes(11.4 * 1024 ** 2)).toBe('11 MiB');
    expect(formatBytes(2 * 1024 ** 4)).toBe('2 TiB');
  });
  it('never shows 1024 of a unit', () => {
    expect(formatBytes(1024 * 1024 - 1)).toBe('1 MiB');
  });
  it('handles missing and bad values', () => {
    expect(formatBytes(undefined)).toBe('—');
    expect(formatBytes(null)).toBe('—');
    expect(formatBytes(-1)).toBe('—');
    expect(formatBytes(Number.NaN)).toBe('—');
  });
});

describe('formatMiB / mibToGiB', () => {
  it('keeps small values in MiB and large in GiB', () => {
    expect(formatMiB(256)).toBe('256 MiB');
    expect(formatMiB(1024)).toBe('1 GiB');
    expect(formatMiB(1536)).toBe('1.5 GiB');
    expect(formatMiB(16384)).toBe('16 GiB');
    expect(formatMiB(-5)).toBe('—');
  });
  it('converts', () => {
    expect(mibToGiB(2048)).toBe(2);
    expect(mibToGiB(512)).toBe(0.5);
  });
});

describe('percent', () => {
  it('clamps and floors', () => {
    expect(percent(0, 100)).toBe(0);
    expect(percent(999, 1000)).toBe(99);
    expect(percent(1000, 1000)).toBe(100);
    expect(percent(2000, 1000)).toBe(100);
    expect(percent(5, 0)).toBe(0);
  });
});

describe('formatDuration', () => {
  it('picks a readable unit', () => {
    expect(formatDuration(0)).toBe('0 s');
    expect(formatDuration(45_000)).toBe('45 s');
    expect(formatDuration(3 * 60_000 + 10_000)).toBe('3 min');
    expect(formatDuration(2 * 3600_000)).toBe('2 h');
    expect(formatDuration(2 * 3600_000 + 5 * 60_000)).toBe('2 h 5 min');
    expect(formatDuration(3 * 86400_000 + 4 * 3600_000)).toBe('3 d 4 h');
    expect(formatDuration(-1)).toBe('—');
  });
});

describe('basename / formatDateTime', () => {
  it('takes the last path segment', () => {
    expect(basename('/data/isos/ubuntu.iso')).toBe('ubuntu.iso');
    expect(basename('/data/disks/a.qcow2/')).toBe('a.qcow2');
    expect(basename('plain')).toBe('plain');
    expect(basename(null)).toBe('');
  });
  it('formats dates and tolerates junk', () => {
    expect(formatDateTime('2025-11-28T14:00:00.000Z', 'en-GB')).toMatch(/2025/);
    expect(formatDateTime('nope')).toBe('—');
    expect(formatDateTime(null)).toBe('—');
  });
});

describe('formatCommandLine', () => {
  it('puts each option on its own line', () => {
    expect(formatCommandLine('qemu -m 256 -smp 1')).toBe('qemu \\\n  -m 256 \\\n  -smp 1');
  });
  it('does not split inside quotes or on negative numbers', () => {
    const cmd = `qemu -blockdev '{"a":"x -y"}' -name "a -b" -x -1`;
    expect(formatCommandLine(cmd)).toBe(`qemu \\\n  -blockdev '{"a":"x -y"}' \\\n  -name "a -b" \\\n  -x -1`);
  });
  it('leaves short commands alone', () => {
    expect(formatCommandLine('qemu')).toBe('qemu');
  });
});

describe('uptimeLabel', () => {
  const words = { upFor: (d: string) => `up ${d}`, justStarted: 'just started' };
  const t0 = Date.parse('2025-11-28T14:00:00.000Z');
  it('describes how long a VM has run', () => {
    expect(uptimeLabel('2025-11-28T14:00:00.000Z', t0 + 5 * 60_000, words)).toBe('up 5 min');
    expect(uptimeLabel('2025-11-28T14:00:00.000Z', t0 + 10_000, words)).toBe('just started');
    expect(uptimeLabel('2025-11-28T14:00:00.000Z', t0 - 10_000, words)).toBe('just started');
    expect(uptimeLabel(null, t0, words)).toBeNull();
    expect(uptimeLabel('garbage', t0, words)).toBeNull();
  });
});

describe('relativeTime', () => {
  const words = { justNow: 'just now', ago: (d: string) => `${d} ago`, in: (d: string) => `in ${d}` };
  const now = Date.parse('2025-11-28T12:00:00.000Z');
  it('says how long ago or how far ahead', () => {
    expect(relativeTime('2025-11-28T11:57:00.000Z', now, words)).toBe('3 min ago');
    expect(relativeTime('2025-11-28T11:59:30.000Z', now, words)).toBe('just now');
    expect(relativeTime('2025-11-28T12:00:30.000Z', now, words)).toBe('just now');
    expect(relativeTime('2025-12-28T12:00:00.000Z', now, words)).toBe('in 30 d');
    expect(relativeTime('2025-11-27T10:00:00.000Z', now, words)).toBe('1 d 2 h ago');
  });
  it('shows a dash for missing or bad dates', () => {
    expect(relativeTime(null, now, words)).toBe('—');
    expect(relativeTime('not a date', now, words)).toBe('—');
  });
});
