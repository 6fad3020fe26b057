import fs from 'node:fs';
import path from 'node:path';
import type { QemuIdentity } from './identity.js';

type Owners = Record<string, [uid: number, gid: number]>;

/**
 * Like libvirt's dynamic ownership: while a VM runs, its images and run directory belong to that
 * VM's unprivileged QEMU user; when it stops they go back to their previous owners. The previous
 * owners are kept in `run/<vm-id>.owners.json` (outside the run directory QEMU can write), so they
 * are restored even after a server restart.
 */
export class Ownership {
  constructor(private readonly runRoot: string) {}

  private file(vmId: string): string {
    return path.join(this.runRoot, `${vmId}.owners.json`);
  }

  private read(vmId: string): Owners {
    try {
      return JSON.parse(fs.readFileSync(this.file(vmId), 'utf8')) as Owners;
    } catch {
      return {};
    }
  }

  /** Gives `files` to the VM's QEMU user; `readOnly` ones only if that user cannot read them already. */
  give(vmId: string, id: QemuIdentity | null, files: readonly string[], readOnly: readonly string[] = []): void {
    if (!id) return;
    const owners = this.read(vmId);
    const todo = [
      ...files,
      ...readOnly.filter((f) => {
        const st = fs.statSync(f);
        return (st.mode & 0o004) === 0 && st.uid !== id.uid;
      }),
    ];
    for (const f of todo) {
      const st = fs.statSync(f);
      if (!(f in owners) && st.uid !== id.uid) owners[f] = [st.uid, st.gid];
    }
    fs.writeFileSync(this.file(vmId), JSON.stringify(owners), { mode: 0o600 });
    for (const f of todo) fs.chownSync(f, id.uid, id.gid);
  }

  /** Gives everything recorded for this VM back (the VM has stopped). */
  restore(vmId: string): void {
    const owners = this.read(vmId);
    for (const [f, [uid, gid]] of Object.entries(owners)) {
      try {
        fs.chownSync(f, uid, gid);
      } catch {
        /* the file is gone */
      }
    }
    fs.rmSync(this.file(vmId), { force: true });
  }
}
