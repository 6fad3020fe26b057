import type { Task } from '@qemu-manager/contract';
import path from 'node:path';
import { nowIso } from '../lib/time.js';
import { errorMessage } from '../lib/errors.js';
import { checkDiskFile, requireBackup, rootOf, type BackupOpsDeps } from './ops-common.js';

/**
 * POST /api/backups/{id}/verify (issue 13): re-reads every file of the backup, checks its sha256,
 * size and headers against the manifest, and runs `qemu-img check` of the file alone (unprivileged).
 * All good: `verifiedAt` is set, state `ok`. Anything else: state `corrupt` and the task fails
 * naming the file and what did not match.
 */
export class BackupVerify {
  constructor(private readonly deps: BackupOpsDeps) {}

  start(id: string): { task: Task } {
    const { deps } = this;
    const b = requireBackup(deps.repo, id);
    const onHost = deps.vm.repo.get(b.vm) !== null;
    const task = deps.tasks.start('backup.verify', onHost ? { vm: b.vm } : {}, async (tctx) => {
      const root = rootOf(b);
      const total = b.disks.reduce((n, d) => n + d.sizeBytes, 0);
      let done = 0;
      tctx.progress(0, total);
      let problem: string | null = null;
      for (const d of b.disks) {
        const file = path.join(b.dir, d.file);
        try {
          await checkDiskFile(root, b.dir, d, tctx.signal);
          const checked = await deps.images.check(file, 'qcow2', { root });
          if (!checked.ok) problem = `${file}: ${checked.message}`;
        } catch (err) {
          if (tctx.signal.aborted) throw err;
          problem = errorMessage(err);
        }
        if (problem) break;
        done += d.sizeBytes;
        tctx.progress(done, total);
      }
      const now = deps.repo.get(id);
      if (!now) throw new Error(`The backup ${id} was deleted meanwhile`);
      const updated = problem ? { ...now, state: 'corrupt' as const } : { ...now, state: 'ok' as const, verifiedAt: nowIso() };
      deps.repo.update(updated);
      if (problem) throw new Error(`Backup ${id} is corrupt: ${problem}`);
      return { backup: id };
    });
    return { task };
  }
}
