/**
 * Serial console (issue 14): what the routes and the WebSocket need, over the runtime port. The
 * VM's rules (exists, running) are the caller's checks, given in: the same ones as for VNC.
 */
import { SERIAL_LOG_MAX_LINES } from '@qemu-manager/contract';
import { lastLines } from '../lib/byte-ring.js';
import { AppError } from '../lib/errors.js';
import type { SerialChannel, VmRuntime } from '../runtime/port.js';

/** How much of the log's end is read for a tail (the log itself is bounded too). */
export const SERIAL_TAIL_MAX_BYTES = 1024 * 1024;

interface SerialServiceDeps {
  runtime: VmRuntime;
  /** Throws unless the VM exists and its consoles can be opened (VM_NOT_FOUND, VM_NOT_RUNNING). */
  checkConsole(vmId: string): void;
  /** Throws VM_NOT_FOUND unless the VM exists. */
  requireVm(vmId: string): void;
}

export class SerialService {
  constructor(private readonly deps: SerialServiceDeps) {}

  /** The running VM's serial port, or the refusal (as for its VNC console). */
  channel(vmId: string): SerialChannel {
    this.deps.checkConsole(vmId);
    const channel = this.deps.runtime.serial?.(vmId) ?? null;
    if (!channel) throw new AppError('QEMU_UNREACHABLE', 'This VM has no serial console socket (it was started by an older version: restart it)');
    return channel;
  }

  /** The last `lines` lines of the VM's serial log (its current or last run), as text. */
  tail(vmId: string, lines: number): string {
    this.deps.requireVm(vmId);
    const n = Math.max(1, Math.min(SERIAL_LOG_MAX_LINES, lines));
    const bytes = this.deps.runtime.serialLog?.(vmId, SERIAL_TAIL_MAX_BYTES) ?? Buffer.alloc(0);
    return lastLines(bytes.toString('utf8'), n);
  }
}
