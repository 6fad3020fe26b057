import type { QmpClient, QmpEvent } from './client.js';
import { QmpClosedError, QmpTimeoutError } from './errors.js';

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

  // metrics (issue 14)
  /** Asks the balloon device `id` to have the guest report its memory statistics every `seconds` (0: stop). */
  async balloonStatsInterval(id: string, seconds: number): Promise<void> {
    await this.qmp.execute('qom-set', { path: `/machine/peripheral/${id}`, property: 'guest-stats-polling-interval', value: seconds });
  }

  /** The balloon device's last statistics from the guest (untrusted: the caller validates them). */
  async balloonStats(id: string): Promise<unknown> {
    return this.qmp.execute<unknown>('qom-get', { path: `/machine/peripheral/${id}`, property: 'guest-stats' });
  }

  /** Writes the primary display's current frame as a PNG file at `filename` (QEMU opens it, as its user). */
  async screendumpPng(filename: string, timeoutMs: number): Promise<void> {
    await this.qmp.execute('screendump', { filename, format: 'png' }, { timeoutMs });
  }

  // --- snapshots (issue 10) ------------------------------------------------------------------

  /**
   * The internal snapshot `name` in each root node of `devices`, in one transaction (all or none),
   * disks only: no VM state, and the guest is not stopped.
   */
  async snapshotDisksInternal(devices: readonly string[], name: string): Promise<void> {
    await this.qmp.execute('transaction', {
      actions: devices.map((device) => ({ type: 'blockdev-snapshot-internal-sync', data: { device, name } })),
    });
  }

  /** `snapshot-save` job: disks and VM state (into `vmstate`); the guest is stopped while QEMU saves. */
  async snapshotSave(jobId: string, tag: string, vmstate: string, devices: readonly string[], timeoutMs: number): Promise<string | null> {
    return this.runJob(jobId, () => this.qmp.execute('snapshot-save', { 'job-id': jobId, tag, vmstate, devices: [...devices] }), timeoutMs);
  }

  /** `snapshot-load` job: disks and VM state back to `tag`; a running guest goes on from there. */
  async snapshotLoad(jobId: string, tag: string, vmstate: string, devices: readonly string[], timeoutMs: number): Promise<string | null> {
    return this.runJob(jobId, () => this.qmp.execute('snapshot-load', { 'job-id': jobId, tag, vmstate, devices: [...devices] }), timeoutMs);
  }

  /** `snapshot-delete` job: removes `tag` from the nodes of `devices` that have it. */
  async snapshotDelete(jobId: string, tag: string, devices: readonly string[], timeoutMs: number): Promise<string | null> {
    return this.runJob(jobId, () => this.qmp.execute('snapshot-delete', { 'job-id': jobId, tag, devices: [...devices] }), timeoutMs);
  }

  async queryJobs(): Promise<QmpJob[]> {
    return this.qmp.execute<QmpJob[]>('query-jobs');
  }

  async jobDismiss(id: string): Promise<void> {
    await this.qmp.execute('job-dismiss', { id });
  }

  /**
   * Starts a job with `start` and waits for it to conclude (JOB_STATUS_CHANGE, listened to before
   * the start, so none is missed); then reads its error from query-jobs and dismisses it. Resolves
   * with the job's error (null: it succeeded). Rejects if QMP closes or the job outlives `timeoutMs`.
   */
  private async runJob(id: string, start: () => Promise<unknown>, timeoutMs: number): Promise<string | null> {
    let onEvent!: (ev: QmpEvent) => void;
    let onClose!: () => void;
    let timer: NodeJS.Timeout | undefined;
    const concluded = new Promise<void>((resolve, reject) => {
      onEvent = (ev) => {
        if (ev.event === 'JOB_STATUS_CHANGE' && ev.data?.id === id && (ev.data.status === 'concluded' || ev.data.status === 'null')) resolve();
      };
      onClose = () => reject(new QmpClosedError(`QMP closed while job ${id} ran`));
      timer = setTimeout(() => reject(new QmpTimeoutError(`job ${id} did not finish within ${timeoutMs} ms`)), timeoutMs);
      this.qmp.on('event', onEvent);
      this.qmp.once('close', onClose);
    });
    concluded.catch(() => undefined); // observed below; a start that fails first must not leave it unhandled
    try {
      await start();
      await concluded;
    } finally {
      clearTimeout(timer);
      this.qmp.off('event', onEvent);
      this.qmp.off('close', onClose);
    }
    const job = (await this.queryJobs()).find((j) => j.id === id);
    if (job) await this.jobDismiss(id);
    return job?.error ?? null;
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

  // --- backups: engine (issue 13) -------------------------------------------------------------

  /** Every named block node (flat), with its image size and dirty bitmaps. */
  async queryNamedBlockNodes(): Promise<QmpBlockNode[]> {
    return this.qmp.execute<QmpBlockNode[]>('query-named-block-nodes', { flat: true });
  }

  /** Adds a node: a qcow2 over an NBD export on a unix socket, no backing file opened. */
  async blockdevAddQcow2OverNbd(nodeName: string, socket: string): Promise<void> {
    await this.qmp.execute('blockdev-add', {
      'node-name': nodeName,
      driver: 'qcow2',
      backing: null,
      file: { driver: 'nbd', server: { type: 'unix', path: socket } },
    });
  }

  async blockdevDel(nodeName: string): Promise<void> {
    await this.qmp.execute('blockdev-del', { 'node-name': nodeName });
  }

  /**
   * One transaction: for each disk a `blockdev-backup` job into its target node (everything, or
   * what `bitmap` marks, the bitmap left as it is) and, in the same instant, a new persistent
   * dirty bitmap. Jobs stay until dismissed.
   */
  async backupTransaction(
    disks: ReadonlyArray<{ device: string; target: string; jobId: string; bitmap: string | null; newBitmap: string | null }>,
    speed: number | undefined,
  ): Promise<void> {
    const actions: unknown[] = [];
    for (const d of disks) {
      actions.push({
        type: 'blockdev-backup',
        data: {
          'job-id': d.jobId,
          device: d.device,
          target: d.target,
          sync: d.bitmap ? 'bitmap' : 'full',
          ...(d.bitmap ? { bitmap: d.bitmap, 'bitmap-mode': 'never' } : {}),
          ...(speed ? { speed } : {}),
          'auto-finalize': true,
          'auto-dismiss': false,
        },
      });
      if (d.newBitmap) actions.push({ type: 'block-dirty-bitmap-add', data: { node: d.device, name: d.newBitmap, persistent: true } });
    }
    // (completion-mode grouped cannot be combined with block-dirty-bitmap-add: the caller waits for
    // every job and fails the backup if any one failed.)
    await this.qmp.execute('transaction', { actions });
  }

  async blockDirtyBitmapRemove(node: string, name: string): Promise<void> {
    await this.qmp.execute('block-dirty-bitmap-remove', { node, name });
  }

  async jobCancel(id: string): Promise<void> {
    await this.qmp.execute('job-cancel', { id });
  }

  // --- networks (issue 11) ---------------------------------------------------------------------

  /** Adds a network backend (`args` from argv.ts netdevAddArgs: its type and id `net<slot>`). */
  async netdevAdd(args: Record<string, unknown>): Promise<void> {
    await this.qmp.execute('netdev_add', args);
  }

  async netdevDel(id: string): Promise<void> {
    await this.qmp.execute('netdev_del', { id });
  }

  /** Hot-plugs a device (`args` from argv.ts nicDeviceAddArgs: driver, id, netdev, mac, bus). */
  async deviceAdd(args: Record<string, unknown>): Promise<void> {
    await this.qmp.execute('device_add', args);
  }

  /**
   * Asks the guest to let go of the device `id` (device_del) and waits for DEVICE_DELETED of it
   * (listened to before the request, so none is missed). Resolves false when the guest did not
   * let go within `timeoutMs` (the device is still there; QEMU may still remove it later).
   */
  async deviceDelAndWait(id: string, timeoutMs: number): Promise<boolean> {
    let onEvent!: (ev: QmpEvent) => void;
    let onClose!: () => void;
    let timer: NodeJS.Timeout | undefined;
    const deleted = new Promise<boolean>((resolve, reject) => {
      onEvent = (ev) => {
        if (ev.event === 'DEVICE_DELETED' && ev.data?.device === id) resolve(true);
      };
      onClose = () => reject(new QmpClosedError(`QMP closed while device ${id} was being removed`));
      timer = setTimeout(() => resolve(false), timeoutMs);
      this.qmp.on('event', onEvent);
      this.qmp.once('close', onClose);
    });
    deleted.catch(() => undefined);
    try {
      await this.qmp.execute('device_del', { id });
      return await deleted;
    } finally {
      clearTimeout(timer);
      this.qmp.off('event', onEvent);
      this.qmp.off('close', onClose);
    }
  }

  /**
   * A user-mode NIC's new forward, live: HMP `hostfwd_add <netdev> <rule>` (rule from argv.ts
   * hostfwdRule). HMP answers text: empty is success, anything else is QEMU's error, returned.
   */
  async hostfwdAdd(netdev: string, rule: string): Promise<string | null> {
    return hmpError(await this.hmp(`hostfwd_add ${netdev} ${rule}`));
  }

  /** Removes a user-mode NIC's forward by its host side (argv.ts hostfwdHostSide); returns QEMU's error text, or null. */
  async hostfwdRemove(netdev: string, hostSide: string): Promise<string | null> {
    return hmpError(await this.hmp(`hostfwd_remove ${netdev} ${hostSide}`));
  }

  private async hmp(commandLine: string): Promise<string> {
    if (/[\r\n]/.test(commandLine)) throw new Error('an HMP command is one line');
    return this.qmp.execute<string>('human-monitor-command', { 'command-line': commandLine });
  }

  /** Listens to QMP events until the returned function is called. */
  onEvent(listener: (ev: QmpEvent) => void): () => void {
    this.qmp.on('event', listener);
    return () => this.qmp.off('event', listener);
  }

  /** Calls `listener` once if the QMP connection closes before the returned function is called. */
  onClose(listener: () => void): () => void {
    this.qmp.once('close', listener);
    return () => this.qmp.off('close', listener);
  }
}

// backups: engine (issue 13)
/** One entry of `query-named-block-nodes` (the fields we read). */
export interface QmpBlockNode {
  'node-name': string;
  drv: string;
  image?: { 'virtual-size'?: number };
  'dirty-bitmaps'?: Array<{ name: string; persistent?: boolean; inconsistent?: boolean; recording?: boolean; busy?: boolean }>;
}

// disk resize (issue 10)
/** One entry of `query-block` (the fields we read). */
export interface QmpBlockInfo {
  device: string;
  qdev?: string;
  inserted?: { 'node-name'?: string; image?: { 'virtual-size'?: number } };
}

/** A job of `query-jobs`. */
export interface QmpJob {
  id: string;
  type: string;
  status: string;
  'current-progress': number;
  'total-progress': number;
  error?: string;
}

// networks (issue 11)
/** HMP's answer as an error: null when it printed nothing (success), else the text. hostfwd_remove prints "host forwarding rule for ... removed" on success. */
function hmpError(out: string): string | null {
  const text = (typeof out === 'string' ? out : '').trim();
  if (text === '' || /^host forwarding rule for .* removed$/i.test(text)) return null;
  return text;
}
