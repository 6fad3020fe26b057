/** Serial console (issue 14): the fake runtime's serial port of a running VM. Tests push output and read input. */
import type { SerialChannel } from '../../packages/server/src/runtime/port.js';

export class FakeSerialPort implements SerialChannel {
  private backlogBuf = Buffer.alloc(0);
  private readonly subs = new Map<(c: Buffer) => void, (() => void) | undefined>();
  /** What viewers typed, in order. */
  readonly input: Buffer[] = [];
  /** False: write() says to wait (the guest "does not read"). */
  accepting = true;
  private waiters: Array<() => void> = [];

  /** The guest writes `text`. */
  output(text: string | Buffer): void {
    const chunk = Buffer.from(text);
    this.backlogBuf = Buffer.concat([this.backlogBuf, chunk]).subarray(-64 * 1024);
    for (const s of this.subs.keys()) s(chunk);
  }

  backlog(): Buffer {
    return Buffer.from(this.backlogBuf);
  }

  subscribe(onData: (chunk: Buffer) => void, onEnd?: () => void): () => void {
    this.subs.set(onData, onEnd);
    return () => this.subs.delete(onData);
  }

  write(data: Buffer): boolean {
    this.input.push(Buffer.from(data));
    return this.accepting;
  }

  onceWritable(cb: () => void): void {
    if (this.accepting) cb();
    else this.waiters.push(cb);
  }

  setAccepting(on: boolean): void {
    this.accepting = on;
    if (on) for (const w of this.waiters.splice(0)) w();
  }

  /** The port went away (the VM stopped). */
  end(): void {
    const ends = [...this.subs.values()];
    this.subs.clear();
    for (const e of ends) e?.();
  }

  get viewers(): number {
    return this.subs.size;
  }
}
