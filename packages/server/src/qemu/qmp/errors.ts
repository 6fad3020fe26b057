import { AppError } from '../../lib/errors.js';

/** Base class of every error raised by the QMP client. */
export class QmpError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The socket could not be opened, or the greeting / capabilities handshake failed or timed out. */
export class QmpConnectError extends QmpError {}

/** QEMU answered a command with `{"error": {"class": ..., "desc": ...}}`. */
export class QmpCommandError extends QmpError {
  readonly qmpClass: string;
  readonly desc: string;

  constructor(qmpClass: string, desc: string) {
    super(desc);
    this.qmpClass = qmpClass;
    this.desc = desc;
  }
}

/** The connection closed (or was closed) before the command was answered. */
export class QmpClosedError extends QmpError {
  constructor(message = 'QMP connection closed', options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** No answer arrived within the command's timeout. */
export class QmpTimeoutError extends QmpError {}

/** Runs a QMP call for the server: QEMU's refusal is QEMU_ERROR, no answer QEMU_UNREACHABLE. */
export async function qmpCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (err instanceof AppError) throw err;
    if (err instanceof QmpCommandError) throw new AppError('QEMU_ERROR', `QEMU refused ${what}: ${err.desc}`);
    throw new AppError('QEMU_UNREACHABLE', `QEMU did not answer ${what}`, { cause: err });
  }
}
