import type { BackupDisk, BackupKind, BackupManifest, DiskFormat } from '@qemu-manager/contract';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { AppError, errorMessage } from '../lib/errors.js';
import { nextLayer } from '../lib/image-check.js';
import { nowIso } from '../lib/time.js';
import type { BackupDiskState, ImageTool, LiveBackupDisk } from '../runtime/port.js';
import type { TaskContext } from '../tasks/service.js';
import { publicVm, requireVm, type VmContext } from '../vms/context.js';
import { freezeWindow } from '../vms/freeze.js'; // fsfreeze (issue 14)
import { publicBackup, type BackupRecord, type BackupRepo } from './repo.js';
import type { ResolvedTarget } from './targets.js';

/**
 * The backup engine (issue 13). A backup is written in `<target>/<vm>/.partial-<id>/` and becomes
 * `<target>/<vm>/<id>/` only once every file is complete, checked, fsync'ed and hashed and the
 * manifest is written; then its row is inserted. Nothing else ever renames into a backup's name,
 * so a listed backup is always whole; a crash leaves at most a `.partial-*`, removed at the next
 * start.
 *
 * Running VM: one QMP transaction (the runtime's `backup`) copies every disk at one point in time
 * and starts a new persistent dirty bitmap `qm-<id>` in each qcow2 disk at that same instant. The
 * bitmap row (backup_bitmaps) is switched to the new bitmap in the transaction that lists the
 * backup; only then is the old bitmap removed; a failed backup removes its new bitmaps. So the row
 * always names a bitmap that counts the changes since a listed backup, and stale `qm-*` bitmaps
 * (a crash between the steps) are removed at the next backup. An incremental needs, for every
 * qcow2 disk, the recorded bitmap present and consistent and its backup listed, `ok` and in the
 * same target; else the whole backup is full (the result says why). Raw/vmdk disks have no
 * persistent bitmap: always copied in full.
 *
 * Stopped VM: the image tool's safe copy of each disk into a qcow2 (full). The bitmap rows stay as
 * they are: nothing wrote to the disks since QEMU saved them, so they still count since their
 * backup and the next live backup can be incremental on it.
 *
 * `frozen`: the guest's file systems were frozen through its agent at the point in time (issue 14).
 */

export interface EngineDeps {
  ctx: VmContext;
  images: ImageTool;
  repo: BackupRepo;
  qemuVersion: string;
}

export interface BackupRequest {
  vmId: string;
  target: ResolvedTarget;
  mode: BackupKind | null;
  speedLimit?: number;
}

interface PlannedDisk {
  index: number;
  source: string;
  format: DiskFormat;
  file: string;
  virtualSize: number;
  /** The bitmap an incremental copies by, and the one the backup starts. */
  bitmap: string | null;
  newBitmap: string | null;
  backing: string | null;
}

const BITMAP_PREFIX = 'qm-';

export async function runBackup(deps: EngineDeps, req: BackupRequest, tctx: TaskContext): Promise<Record<string, unknown>> {
  const { ctx, repo } = deps;
  const vm = requireVm(ctx, req.vmId);
  const id = crypto.randomUUID();
  const vmDir = path.join(req.target.path, vm.id);
  const partial = path.join(vmDir, `.partial-${id}`);
  const final = path.join(vmDir, id);
  const live = ctx.runtime.process(vm.id) !== null;
  const notes: string[] = [];
  const formats = vm.disks.map((d) => (ctx.disks.byPath(d.path)?.format ?? d.format ?? 'raw') as DiskFormat);
  let newBitmaps: Array<{ index: number; name: string }> = [];
  let listed = false;
  try {
    mkdirOwn(req.target.path, vmDir);
    fs.mkdirSync(partial, { mode: 0o700 });

    let kind: BackupKind = 'full';
    let parent: BackupRecord | null = null;
    let plan: PlannedDisk[];
    // fsfreeze (issue 14): the guest frozen through its agent around the transaction, when it answers.
    const freeze = freezeWindow(ctx.runtime, vm.id, notes, ctx.log);
    if (live) {
      const states = await ctx.runtime.backupDisks(vm.id);
      const chosen = chooseIncremental(deps, req, vm.id, vm.disks.map((d) => d.path), formats, states, notes);
      parent = chosen.parent;
      kind = parent ? 'incremental' : 'full';
      // Bitmaps of ours that no row names: left by a crash or a failed cleanup.
      const rows = repo.bitmaps(vm.id);
      const stale = states.flatMap((s) =>
        s.bitmaps
          .filter((b) => b.name.startsWith(BITMAP_PREFIX) && !rows.some((r) => r.disk_path === vm.disks[s.index]?.path && r.bitmap === b.name && b.consistent))
          .map((b) => ({ index: s.index, name: b.name })),
      );
      if (stale.length) await ctx.runtime.removeBitmaps(vm.id, stale);
      plan = vm.disks.map((d, i) => {
        const state = states.find((s) => s.index === i);
        if (!state) throw new AppError('QEMU_ERROR', `The running VM has no disk ${i + 1} (node disk${i})`);
        const qcow2 = formats[i] === 'qcow2';
        const bitmap = parent && qcow2 ? chosen.bitmaps.get(i) ?? null : null;
        return {
          index: i,
          source: d.path,
          format: formats[i]!,
          file: path.join(partial, `disk${i}.qcow2`),
          virtualSize: state.virtualSize,
          bitmap,
          newBitmap: qcow2 ? `${BITMAP_PREFIX}${id}` : null,
          backing: bitmap && parent ? `../${parent.id}/disk${i}.qcow2` : null,
        };
      });
      for (const p of plan) await deps.images.backupTarget(p.file, p.virtualSize, p.backing, tctx.signal);
      newBitmaps = plan.filter((p) => p.newBitmap).map((p) => ({ index: p.index, name: p.newBitmap! }));
      const disks: LiveBackupDisk[] = plan.map((p) => ({ index: p.index, file: p.file, bitmap: p.bitmap, newBitmap: p.newBitmap }));
      await ctx.runtime.backup(vm.id, {
        id,
        disks,
        ...(req.speedLimit ? { speedLimit: req.speedLimit } : {}),
        signal: tctx.signal,
        progress: (done, total) => tctx.progress(done, total),
        pointInTime: freeze,
      });
    } else {
      if (req.mode === 'incremental') notes.push('The VM is stopped: a stopped VM is backed up in full');
      plan = [];
      for (const [i, d] of vm.disks.entries()) {
        const info = await deps.images.info(d.path, formats[i]!);
        plan.push({ index: i, source: d.path, format: formats[i]!, file: path.join(partial, `disk${i}.qcow2`), virtualSize: info['virtual-size'], bitmap: null, newBitmap: null, backing: null });
      }
      const total = plan.reduce((n, p) => n + p.virtualSize, 0);
      let done = 0;
      for (const p of plan) {
        const before = done;
        await deps.images.copy({ file: p.source, format: p.format }, p.file, {
          signal: tctx.signal,
          format: 'qcow2',
          progress: (d) => tctx.progress(before + Math.min(d, p.virtualSize), total),
        });
        done += p.virtualSize;
      }
    }
    if (tctx.signal.aborted) throw new Error('cancelled');

    // Each file: the header says exactly what was asked (self-contained, or the parent's file), then hashed.
    const disks: BackupDisk[] = [];
    let allocated = 0;
    // A live backup's file has a sparse tail (room for the NBD export to grow into): cut at the
    // end of the last cluster qcow2 uses, as the unprivileged qemu-img check reads it, so the hash
    // (and a verify) does not read a GiB of holes. Cut only when the check is clean and the end
    // lies inside the file; otherwise the file stays as it is.
    if (live) {
      for (const p of plan) {
        const c = await deps.images.check(p.file, 'qcow2', { root: req.target.path });
        const end = c.ok ? c.imageEndOffset : undefined;
        if (end === undefined || end <= 0) continue;
        const fd = fs.openSync(p.file, fs.constants.O_RDWR | fs.constants.O_NOFOLLOW);
        try {
          if (end < fs.fstatSync(fd).size) fs.ftruncateSync(fd, end);
        } finally {
          fs.closeSync(fd);
        }
      }
    }
    for (const p of plan) {
      const fd = fs.openSync(p.file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW);
      try {
        fs.fchmodSync(fd, 0o600);
        const next = await nextLayer(fd, p.file, 'qcow2');
        const expected = p.backing;
        if ((next?.file ?? null) !== (expected ? path.resolve(path.dirname(p.file), expected) : null) && (next?.file ?? null) !== expected) {
          throw new Error(`The backup file disk${p.index}.qcow2 names the backing file ${next?.file ?? 'none'}, not ${expected ?? 'none'}`);
        }
        if (next && next.format !== 'qcow2') throw new Error(`The backup file disk${p.index}.qcow2 records the backing format ${next.format}`);
        fs.fsyncSync(fd);
        const st = fs.fstatSync(fd);
        allocated += st.blocks * 512;
        disks.push({
          index: p.index,
          file: `disk${p.index}.qcow2`,
          source: p.source,
          sourceFormat: p.format,
          virtualSize: p.virtualSize,
          sizeBytes: st.size, // the file's length: what its sha256 covers and a verify compares
          sha256: await sha256(fd, tctx.signal),
          backing: p.backing,
        });
      } finally {
        fs.closeSync(fd);
      }
    }
    if (tctx.signal.aborted) throw new Error('cancelled');
    const createdAt = nowIso();
    const manifest: BackupManifest = {
      schema: 1,
      id,
      kind,
      parent: parent?.id ?? null,
      createdAt,
      frozen: freeze.frozen,
      qemuVersion: deps.qemuVersion,
      vm: publicVm(requireVm(ctx, vm.id)),
      disks,
    };
    writeFileDurably(path.join(partial, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    fsyncDir(partial);
    fs.renameSync(partial, final);
    fsyncDir(vmDir);
    const record: BackupRecord = {
      id,
      vm: vm.id,
      vmName: vm.name,
      target: req.target.name,
      createdAt,
      kind,
      parent: parent?.id ?? null,
      sizeBytes: allocated, // what the files take on the target (a live backup's file is sparse)
      verifiedAt: null,
      state: 'ok',
      frozen: freeze.frozen,
      disks,
      dir: final,
      manifest,
    };
    const old = repo.bitmaps(vm.id);
    repo.transaction(() => {
      repo.insert(record);
      for (const p of plan) if (p.newBitmap) repo.setBitmap({ vm_id: vm.id, disk_path: p.source, bitmap: p.newBitmap, backup_id: id });
    });
    listed = true;
    ctx.bus.publish({ type: 'backup.created', backup: publicBackup(record) });
    // The old bitmaps now count from an older backup: removed (a failure leaves them stale, removed next time).
    const replaced = old
      .filter((r) => plan.some((p) => p.newBitmap && p.source === r.disk_path))
      .map((r) => ({ index: plan.find((p) => p.source === r.disk_path)!.index, name: r.bitmap }));
    if (live && replaced.length) await ctx.runtime.removeBitmaps(vm.id, replaced).catch((err: unknown) => ctx.log.warn({ vmId: vm.id, err: errorMessage(err) }, 'could not remove old backup bitmaps'));
    return { backup: id, kind, notes };
  } catch (err) {
    if (!listed) {
      fs.rmSync(partial, { recursive: true, force: true });
      if (live && newBitmaps.length) await ctx.runtime.removeBitmaps(vm.id, newBitmaps).catch(() => undefined);
    }
    throw noSpace(err, req.target);
  }
}

/**
 * Whether this backup can be an incremental, and on which parent: every qcow2 disk needs its
 * recorded bitmap, present and consistent, all naming one listed `ok` backup in this target.
 */
function chooseIncremental(
  deps: EngineDeps,
  req: BackupRequest,
  vmId: string,
  paths: readonly string[],
  formats: readonly DiskFormat[],
  states: readonly BackupDiskState[],
  notes: string[],
): { parent: BackupRecord | null; bitmaps: Map<number, string> } {
  const none = { parent: null, bitmaps: new Map<number, string>() };
  if (req.mode === 'full') return none;
  const qcow2 = paths.map((p, i) => ({ p, i })).filter(({ i }) => formats[i] === 'qcow2');
  if (qcow2.length === 0) {
    notes.push('No disk is qcow2: only qcow2 disks keep the persistent bitmap an incremental needs, so the backup is full');
    return none;
  }
  if (qcow2.length < paths.length) notes.push('Disks that are not qcow2 are always copied in full (they cannot keep a persistent bitmap)');
  const rows = deps.repo.bitmaps(vmId);
  let parent: BackupRecord | null = null;
  const bitmaps = new Map<number, string>();
  for (const { p, i } of qcow2) {
    const row = rows.find((r) => r.disk_path === p);
    const present = states.find((s) => s.index === i)?.bitmaps.find((b) => b.name === row?.bitmap);
    if (!row || !present || !present.consistent) {
      notes.push(row ? `The dirty bitmap of disk ${i + 1} is gone or was not saved (QEMU stopped abruptly?): the backup is full` : 'No earlier backup to build on: the backup is full');
      return none;
    }
    const b = deps.repo.get(row.backup_id);
    if (!b || b.state !== 'ok' || !fs.existsSync(b.dir)) {
      notes.push('The backup the bitmap counts from is no longer listed or readable: the backup is full');
      return none;
    }
    if (b.target !== req.target.name) {
      notes.push(`The last backup is in the target ${b.target}: an incremental must be in its parent's target, so the backup is full`);
      return none;
    }
    if (parent && parent.id !== b.id) {
      notes.push('The disks count changes from different backups: the backup is full');
      return none;
    }
    parent = b;
    bitmaps.set(i, row.bitmap);
  }
  if (parent && !parent.disks.every((d) => d.index >= paths.length || d.source === paths[d.index])) {
    notes.push("The VM's disks changed since the last backup: the backup is full");
    return none;
  }
  return { parent, bitmaps };
}

function mkdirOwn(targetDir: string, vmDir: string): void {
  if (!fs.existsSync(targetDir)) throw new AppError('TARGET_NOT_FOUND', `The backup target directory is gone: ${targetDir}`);
  fs.mkdirSync(vmDir, { recursive: true, mode: 0o700 });
  const st = fs.lstatSync(vmDir);
  if (!st.isDirectory()) throw new Error(`${vmDir} is not a directory`);
}

async function sha256(fd: number, signal: AbortSignal): Promise<string> {
  const hash = crypto.createHash('sha256');
  const stream = fs.createReadStream('', { fd, start: 0, autoClose: false, highWaterMark: 1 << 20 });
  for await (const chunk of stream) {
    if (signal.aborted) {
      stream.destroy();
      throw new Error('cancelled');
    }
    hash.update(chunk as Buffer);
  }
  return hash.digest('hex');
}

/** Writes a temp file, fsyncs it and renames it into place. */
function writeFileDurably(file: string, text: string): void {
  const tmp = `${file}.tmp`;
  const fd = fs.openSync(tmp, fs.constants.O_WRONLY | fs.constants.O_CREAT | fs.constants.O_EXCL | fs.constants.O_NOFOLLOW, 0o600);
  try {
    fs.writeSync(fd, text);
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
  fs.renameSync(tmp, file);
}

function fsyncDir(dir: string): void {
  const fd = fs.openSync(dir, fs.constants.O_RDONLY | fs.constants.O_DIRECTORY);
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** A write that failed for lack of space (ours, qemu-img's or QEMU's job) says so in plain words. */
function noSpace(err: unknown, target: ResolvedTarget): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOSPC' || code === 'EDQUOT' || /no space|ENOSPC|quota/i.test(errorMessage(err))) {
    return new Error(`No space left on the backup target ${target.name} (${target.path}); nothing was kept (${errorMessage(err)})`);
  }
  return err;
}
