/**
 * A fixed-size ring of the last `capacity` bytes written: memory stays at `capacity` whatever is
 * written. `snapshot()` copies the bytes out, oldest first.
 */
export class ByteRing {
  private readonly buf: Buffer;
  /** Where the next byte goes. */
  private head = 0;
  /** How many bytes the ring holds (≤ capacity). */
  private used = 0;

  constructor(readonly capacity: number) {
    if (!Number.isInteger(capacity) || capacity <= 0) throw new Error('a ring needs a positive capacity');
    this.buf = Buffer.alloc(capacity);
  }

  get size(): number {
    return this.used;
  }

  write(chunk: Buffer): void {
    const data = chunk;
    // Only the last `capacity` bytes of a large chunk can survive.
    if (data.length >= this.capacity) {
      data.copy(this.buf, 0, data.length - this.capacity);
      this.head = 0;
      this.used = this.capacity;
      return;
    }
    const first = Math.min(data.length, this.capacity - this.head);
    data.copy(this.buf, this.head, 0, first);
    if (first < data.length) data.copy(this.buf, 0, first);
    this.head = (this.head + data.length) % this.capacity;
    this.used = Math.min(this.capacity, this.used + data.length);
  }

  snapshot(): Buffer {
    if (this.used < this.capacity) return Buffer.from(this.buf.subarray(this.head - this.used, this.head));
    return Buffer.concat([this.buf.subarray(this.head), this.buf.subarray(0, this.head)]);
  }
}

/** The last `n` lines of `text` (a final line without a newline counts; a trailing newline does not start one). */
export function lastLines(text: string, n: number): string {
  if (n <= 0 || text === '') return '';
  let end = text.length;
  if (text.endsWith('\n')) end -= 1;
  let i = end;
  for (let found = 0; found < n; found++) {
    const nl = text.lastIndexOf('\n', i - 1);
    if (nl < 0) return text;
    i = nl;
  }
  return text.slice(i + 1);
}
