import type { QmpClient } from './client.js';

/**
 * Every QMP command the server sends, as a typed method. No QMP command name appears outside
 * qemu/qmp/; an adapter method calls these, the domain calls the adapter.
 */

/** `query-status`'s run state (the subset we act on; QEMU has a few more). */
export type QmpRunState =
  | 'running'
  | 'paused'
  | 'prelaunch'
  | 'shutdown'
  | 'internal-error'
  | 'guest-panicked'
  | 'io-error'
  | 'suspended'
  | 'inmigrate'
  | 'postmigrate'
  | 'finish-migrate'
  | 'restore-vm'
  | 'save-vm'
  | 'watchdog'
  | 'colo'
  | 'debug';

export interface QmpBlockJob {
  device: string;
  type: string;
  len: number;
  offset: number;
  status: string;
  busy: boolean;
  paused: boolean;
  ready: boolean;
}

export interface QmpBlockStats {
  device: string;
  qdev?: string;
  stats: { rd_bytes: number; wr_bytes: number; rd_operations: number; wr_operations: number };
}

export class QmpCommands {
  constructor(private readonly qmp: QmpClient) {}

  async queryStatus(): Promise<{ status: QmpRunState; running: boolean }> {
    return this.qmp.execute<{ status: QmpRunState; running: boolean }>('query-status');
  }

  /** Lets the guest run (after -S, or after stop). */
  async cont(): Promise<void> {
    await this.qmp.execute('cont');
  }

  /** Pauses the guest's CPUs. */
  async stop(): Promise<void> {
    await this.qmp.execute('stop');
  }

  /** The ACPI power button. */
  async systemPowerdown(): Promise<void> {
    await this.qmp.execute('system_powerdown');
  }

  /** The reset button. */
  async systemReset(): Promise<void> {
    await this.qmp.execute('system_reset');
  }

  /** Ends QEMU at once. */
  async quit(timeoutMs: number): Promise<void> {
    await this.qmp.execute('quit', undefined, { timeoutMs });
  }

  /** Inserts a read-only raw medium into the removable drive `id`. */
  async blockdevChangeMedium(id: string, filename: string): Promise<void> {
    await this.qmp.execute('blockdev-change-medium', { id, filename, format: 'raw', 'read-only-mode': 'read-only' });
  }

  /** Opens the drive `id` and removes its medium, even if the guest locked the tray. */
  async eject(id: string): Promise<void> {
    await this.qmp.execute('eject', { id, force: true });
  }

  async queryBlockJobs(): Promise<QmpBlockJob[]> {
    return this.qmp.execute<QmpBlockJob[]>('query-block-jobs');
  }

  async queryBlockstats(): Promise<QmpBlockStats[]> {
    return this.qmp.execute<QmpBlockStats[]>('query-blockstats');
  }

  // disk resize (issue 10)
  /** The block devices and what is inserted in each (node name, virtual size). */
  async queryBlock(): Promise<QmpBlockInfo[]> {
    return this.qmp.execute<QmpBlockInfo[]>('query-block');
  }

  /** Resizes the image of the block node `nodeName` to `bytes`; the guest device sees it at once. */
  async blockResize(nodeName: string, bytes: number): Promise<void> {
    await this.qmp.execute('block_resize', { 'node-name': nodeName, size: bytes });
  }
}

// disk resize (issue 10)
/** One entry of `query-block` (the fields we read). */
export interface QmpBlockInfo {
  device: string;
  qdev?: string;
  inserted?: { 'node-name'?: string; image?: { 'virtual-size'?: number } };
}
