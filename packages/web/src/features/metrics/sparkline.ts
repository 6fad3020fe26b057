// Metrics (issue 14): the SVG path of a sparkline, pure (unit-tested). Gaps (null) break the
// line; the scale is 0..max(100, highest value) so an idle VM shows flat at the bottom.

export function sparklinePath(values: ReadonlyArray<number | null>, width: number, height: number, floorTop = 100): string {
  if (values.length === 0) return '';
  const top = Math.max(floorTop, ...values.map((v) => v ?? 0)) || 1;
  const dx = values.length > 1 ? width / (values.length - 1) : 0;
  let d = '';
  let drawing = false;
  values.forEach((v, i) => {
    if (v === null || !Number.isFinite(v)) {
      drawing = false;
      return;
    }
    const x = Math.round(i * dx * 10) / 10;
    const y = Math.round((height - (Math.max(0, v) / top) * height) * 10) / 10;
    d += `${drawing ? 'L' : 'M'}${x} ${y}`;
    drawing = true;
  });
  return d;
}

/** A graph's line scaled to its own highest value (bytes, rates). */
export function seriesPath(values: ReadonlyArray<number | null>, width: number, height: number): string {
  return sparklinePath(values, width, height, 0);
}
