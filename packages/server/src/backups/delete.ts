import type { BackupManifest, Task } from '@qemu-manager/contract';
import fs from 'node:fs';
import path from 'node:path';
import { openBackupFile, backupChainRule, fsyncDir, hashFd, MANIFEST, requireBackup, rootOf, writeNew, type BackupOpsDeps } from './ops-common.js';
import type { BackupRecord } from './repo.js';

const MERGE = '.merge';

/**
 * DELETE /api/backups/{id} (issue 13). A backup no other backup needs: its row is deleted, then its
 * directory removed, `backup.deleted`. A backup P that later incrementals need is first merged into
 * each child C: for every disk, C' = C's view re-based onto P's parent (P full: a full copy of the
 * chain C→P, so C becomes full; P incremental with parent G: an overlay of G's file holding every
 * cluster where C→P differs from G, by a safe qemu-img rebase), with C's manifest updated.
 *
 * The order, so that a crash at any moment leaves a readable chain:
 * 1. every C' file and C's new manifest are written under temporary names in C's directory
 *    (`.disk<N>.qcow2.merge`, `.manifest.json.merge`, partial files of the task) and fsync'ed;
 * 2. each C' is renamed over C's file: C' has the same view as C and backs onto a file that still
 *    exists (G, or none), P being untouched; then the new manifest is renamed over the old one;
 * 3. in one transaction C's row takes the new manifest and P's row is deleted;
 * 4. only then is P's directory removed.
 * A crash in 1 leaves the old chain (the temporaries are removed at the next start); in 2 or 3, C's
 * files are already re-based while P still exists, so both the old and the new reading are valid, and
 * deleting P again finishes the work (the merge of an already re-based C gives the same files); after
 * 3, P's directory is an unlisted leftover.
 */
export class BackupDelete {
  constructor(private readonly deps: BackupOpsDeps) {}

  start(id: string): { task: Task } {
    const { deps } = this;
    const p = requireBackup(deps.repo, id);
    const onHost = deps.vm.repo.get(p.vm) !== null;
    const task = deps.tasks.start('backup.delete', onHost ? { vm: p.vm } : {}, async (tctx) => {
      const parent = p.parent ? requireBackup(deps.repo, p.parent) : null;
      const children = deps.repo.children(p.id);
      const updated: BackupRecord[] = [];
      const total = children.reduce((n, c) => n + c.disks.reduce((k, d) => k + d.virtualSize, 0), 0);
      let done = 0;
      if (total) tctx.progress(0, total);
      for (const c of children) {
        const root = rootOf(c);
        const disks: BackupManifest['disks'] = [];
        for (const d of c.disks) {
          const tmp = path.join(c.dir, `.${d.file}${MERGE}`);
          fs.rmSync(tmp, { force: true }); // what an earlier, interrupted delete left
          tctx.partial(tmp);
          const source = { file: path.join(c.dir, d.file), root, checkBacking: backupChainRule(c) };
          const opts = { signal: tctx.signal, partial: (f: string) => tctx.partial(f) };
          let backing: string | null = null;
          if (parent) {
            backing = `../${parent.id}/${d.file}`;
            await deps.images.rebase(source, { file: path.join(parent.dir, d.file), name: backing }, tmp, opts);
          } else {
            await deps.images.flatten(source, tmp, opts);
          }
          const { fd } = openBackupFile(root, tmp);
          let sum: { sha256: string; bytes: number };
          try {
            fs.fsyncSync(fd);
            sum = await hashFd(fd, tctx.signal);
          } finally {
            fs.closeSync(fd);
          }
          disks.push({ ...d, sha256: sum.sha256, sizeBytes: sum.bytes, backing });
          done += d.virtualSize;
          tctx.progress(done, total);
        }
        const manifest: BackupManifest = { ...c.manifest, kind: parent ? 'incremental' : 'full', parent: parent?.id ?? null, disks };
        const mtmp = path.join(c.dir, `.${MANIFEST}${MERGE}`);
        fs.rmSync(mtmp, { force: true });
        tctx.partial(mtmp);
        writeNew(mtmp, `${JSON.stringify(manifest, null, 2)}\n`);
        updated.push({ ...c, manifest, disks, kind: manifest.kind, parent: manifest.parent, sizeBytes: disks.reduce((n, d) => n + d.sizeBytes, 0), verifiedAt: null, state: 'ok' });
      }
      if (tctx.signal.aborted) throw new Error('cancelled');
      // The point of no return: re-based files over the children's, then the manifests.
      for (const c of updated) {
        for (const d of c.disks) {
          fs.renameSync(path.join(c.dir, `.${d.file}${MERGE}`), path.join(c.dir, d.file));
          tctx.kept(path.join(c.dir, `.${d.file}${MERGE}`));
        }
        fs.renameSync(path.join(c.dir, `.${MANIFEST}${MERGE}`), path.join(c.dir, MANIFEST));
        tctx.kept(path.join(c.dir, `.${MANIFEST}${MERGE}`));
        fsyncDir(c.dir);
      }
      deps.repo.transaction(() => {
        for (const c of updated) deps.repo.update(c);
        deps.repo.delete(p.id);
        // A dirty bitmap that counts changes since P has nothing to build on now: the next backup is full.
        for (const row of deps.repo.bitmaps(p.vm)) if (row.backup_id === p.id) deps.repo.dropBitmap(row.vm_id, row.disk_path);
      });
      fs.rmSync(p.dir, { recursive: true, force: true });
      deps.bus.publish({ type: 'backup.deleted', id: p.id });
      return { backup: p.id, merged: updated.map((c) => c.id) };
    });
    return { task };
  }
}
