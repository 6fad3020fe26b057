/** Plain output: padded tables, sizes, progress lines. */

export function table(headers: string[], rows: (string | number | null | undefined)[][]): string {
  const cells = rows.map((r) => r.map((c) => (c === null || c === undefined || c === '' ? '-' : String(c))));
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((r) => r[i]?.length ?? 0)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
  return [line(headers), ...cells.map(line)].join('\n') + '\n';
}

export function bytes(n: number | null | undefined): string {
  if (n === null || n === undefined) return '-';
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = n;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(1)} ${units[u]}`;
}

/** One progress line (a bar of 30 cells), redrawn in place with \r. */
export function bar(label: string, fraction: number): string {
  const f = Math.max(0, Math.min(1, fraction));
  const full = Math.round(f * 30);
  return `\r${label} [${'#'.repeat(full)}${'.'.repeat(30 - full)}] ${(f * 100).toFixed(0).padStart(3)}%`;
}
