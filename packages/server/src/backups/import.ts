import type { Task } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { checkDiskFile, checkManifestDisks, readManifest, type BackupOpsDeps } from './ops-common.js';
import { publicBackup, type BackupRecord } from './repo.js';

const PLAIN = /^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$/;

/**
 * POST /api/backups/import (issue 13): lists a backup directory that was copied into a target from
 * elsewhere. Refused at once (4xx, nothing changed): a path that is not `<target>/<vm id>/<backup
 * id>` as written and as real path (no symlink anywhere, plain names), a manifest that breaks the
 * contract schema or the layout rules, an id already listed, an incremental whose parent is not
 * listed (import parents first). The task then checks every file (sha256, size, headers) and only
 * then inserts the row and sends `backup.created`; a failed import lists nothing.
 */
export class BackupImports {
  constructor(private readonly deps: BackupOpsDeps) {}

  start(input: string): { task: Task } {
    const { deps } = this;
    if (input.includes('\0') || !path.isAbsolute(input)) throw new AppError('PATH_NOT_ALLOWED', `The backup path must be absolute: ${input}`);
    const lexical = path.resolve(input);
    const targets = deps.targets.all();
    const target = targets.find((t) => lexical.startsWith(t.path + path.sep));
    if (!target) throw new AppError('PATH_NOT_ALLOWED', `${input} is not inside a backup target (${targets.map((t) => t.path).join(', ')})`);
    const parts = path.relative(target.path, lexical).split(path.sep);
    if (parts.length !== 2 || !parts.every((p) => PLAIN.test(p))) {
      throw new AppError('PATH_NOT_ALLOWED', `${input} is not a backup directory <target>/<vm id>/<backup id> of the target ${target.name}`);
    }
    let cur = target.path;
    for (const p of parts) {
      cur = path.join(cur, p);
      let st: fs.Stats;
      try {
        st = fs.lstatSync(cur);
      } catch {
        throw new AppError('FILE_NOT_FOUND', `${cur} does not exist`);
      }
      if (st.isSymbolicLink()) throw new AppError('PATH_NOT_ALLOWED', `${cur} is a symlink; a backup directory is reached without symlinks`);
      if (!st.isDirectory()) throw new AppError('NOT_A_REGULAR_FILE', `${cur} is not a directory`);
    }
    if (fs.realpathSync(lexical) !== lexical) throw new AppError('PATH_NOT_ALLOWED', `${input} is reached through a symlink`);
    const [vmId, backupId] = parts as [string, string];
    const dir = lexical;
    const m = readManifest(dir);
    if (m.id !== backupId) throw new AppError('VALIDATION', `${dir}/manifest.json is of the backup ${m.id}, not ${backupId}`);
    if (m.vm.id !== vmId) throw new AppError('VALIDATION', `${dir}/manifest.json is of the VM ${m.vm.id}, not ${vmId}`);
    checkManifestDisks(m, dir);
    if (deps.repo.get(m.id) || deps.repo.byDir(dir)) throw new AppError('NAME_TAKEN', `The backup ${m.id} is listed already`);
    if (m.parent !== null) {
      const parent = deps.repo.get(m.parent);
      if (!parent || parent.dir !== path.join(target.path, vmId, m.parent)) {
        throw new AppError('FILE_MISSING', `The backup ${m.id} is an incremental of ${m.parent}, which is not listed in this target: import ${m.parent} first`);
      }
      for (const d of m.disks) {
        if (!parent.disks.some((p) => p.index === d.index)) throw new AppError('VALIDATION', `The parent backup ${m.parent} has no disk ${d.index}`);
      }
    }
    const onHost = deps.vm.repo.get(m.vm.id) !== null;
    const task = deps.tasks.start('backup.import', onHost ? { vm: m.vm.id } : {}, async (tctx) => {
      const total = m.disks.reduce((n, d) => n + d.sizeBytes, 0);
      let done = 0;
      tctx.progress(0, total);
      for (const d of m.disks) {
        await checkDiskFile(target.path, dir, d, tctx.signal);
        done += d.sizeBytes;
        tctx.progress(done, total);
      }
      const record: BackupRecord = {
        id: m.id,
        vm: m.vm.id,
        vmName: m.vm.name,
        target: target.name,
        createdAt: m.createdAt,
        kind: m.kind,
        parent: m.parent,
        sizeBytes: total,
        verifiedAt: null,
        state: 'ok',
        frozen: m.frozen,
        disks: m.disks,
        dir,
        manifest: m,
      };
      deps.repo.transaction(() => {
        if (deps.repo.get(m.id) || deps.repo.byDir(dir)) throw new AppError('NAME_TAKEN', `The backup ${m.id} was listed meanwhile`);
        if (m.parent !== null && !deps.repo.get(m.parent)) throw new AppError('FILE_MISSING', `The parent backup ${m.parent} was deleted meanwhile`);
        deps.repo.insert(record);
      });
      deps.bus.publish({ type: 'backup.created', backup: publicBackup(record) });
      return { backup: m.id };
    });
    return { task };
  }
}
