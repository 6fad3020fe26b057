import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import type { StorageRoots } from '../lib/storage.js';
import type { QemuIdentity } from './identity.js';

/** A file lent to a VM's QEMU user: which file (by device and inode) and whom it goes back to. */
interface Lent {
  path: string;
  dev: number;
  ino: number;
  uid: number;
  gid: number;
}

/**
 * Media inserted while a VM runs. Images given at start reach QEMU as open descriptors and are never
 * chowned; a live insert goes over QMP by path (Node cannot pass descriptors over the QMP socket), so
 * a medium the VM's QEMU user cannot read is lent to it for the VM's run: the file is opened under the
 * storage roots without following symlinks and the descriptor is fchown'ed (never the path), with its
 * device, inode and previous owner recorded in `<run dir>/owners.json` (a directory only the server
 * writes). Giving back opens the path the same way and fchowns it only if it is still that same file.
 * A pool user is never recorded as a previous owner: a medium lent to another running VM is refused
 * (it goes back to its real owner when that VM stops), so no chain of lends can leave it with a pool user.
 */
export class Ownership {
  constructor(
    private readonly storage: StorageRoots,
    /** The record file of a VM (in a directory no QEMU user can write). */
    private readonly recordFile: (vmId: string) => string,
    /** Whether a uid is one of the QEMU users (a medium it owns is lent to a running VM, or was). */
    private readonly isPoolUid: (uid: number) => boolean = () => false,
  ) {}

  private read(vmId: string): Lent[] {
    const v = readRecord(this.recordFile(vmId));
    return Array.isArray(v) ? (v as Lent[]) : [];
  }

  private write(vmId: string, lent: Lent[]): void {
    const file = this.recordFile(vmId);
    if (lent.length === 0) return void fs.rmSync(file, { force: true });
    const tmp = `${file}.tmp`;
    fs.rmSync(tmp, { force: true });
    fs.writeFileSync(tmp, JSON.stringify(lent), { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, file);
  }

  /**
   * Lets the VM's QEMU user read the medium at `file` (already checked to be under the roots).
   * Returns the real path that was opened; QEMU is then given that path.
   */
  lendMedium(vmId: string, id: QemuIdentity | null, file: string): string {
    const opened = this.storage.openFile(file, 'ISO', fs.constants.O_RDONLY);
    try {
      const st = opened.stat;
      if (!id || st.uid === id.uid || (st.mode & 0o004) !== 0) return opened.real;
      if (this.isPoolUid(st.uid)) {
        throw new AppError('ISO_IN_USE',
          `${opened.real} is lent to another running VM (its QEMU user owns it); eject it there first`,
        );
      }
      const lent = this.read(vmId);
      if (!lent.some((l) => l.dev === st.dev && l.ino === st.ino)) {
        lent.push({ path: opened.real, dev: st.dev, ino: st.ino, uid: st.uid, gid: st.gid });
        this.write(vmId, lent); // recorded before the change, so a crash cannot lose the owner
      }
      fs.fchownSync(opened.fd, id.uid, id.gid);
      return opened.real;
    } finally {
      fs.closeSync(opened.fd);
    }
  }

  /** Gives every lent medium back to its previous owner (the VM has stopped, or was found dead). */
  restore(vmId: string): void {
    for (const l of this.read(vmId)) {
      let fd: number | null = null;
      try {
        const opened = this.storage.openFile(l.path, 'ISO', fs.constants.O_RDONLY);
        fd = opened.fd;
        if (opened.stat.dev === l.dev && opened.stat.ino === l.ino) fs.fchownSync(fd, l.uid, l.gid);
      } catch {
        /* the file is gone or no longer where it was: nothing of ours to give back */
      } finally {
        if (fd !== null) fs.closeSync(fd);
      }
    }
    fs.rmSync(this.recordFile(vmId), { force: true });
  }

  /**
   * Gives back what an older version chowned by path and recorded as `{ path: [uid, gid] }` (in the
   * server's own run root): each file still under the storage roots is opened without following
   * symlinks and fchown'ed, only if it is still owned by the VM's QEMU user `uid` (what that version
   * gave it). With no such uid known nothing is touched and the record stays.
   */
  restoreLegacy(recordFile: string, uid: number | null): void {
    const owners = readRecord(recordFile);
    if (owners === null) return;
    if (uid === null || uid === 0 || uid === process.getuid?.()) return;
    if (typeof owners === 'object' && !Array.isArray(owners)) {
      for (const [file, prev] of Object.entries(owners as Record<string, unknown>)) {
        if (!Array.isArray(prev) || !Number.isInteger(prev[0]) || !Number.isInteger(prev[1])) continue;
        let fd: number | null = null;
        try {
          const opened = this.storage.openFile(file, 'disk', fs.constants.O_RDONLY);
          fd = opened.fd;
          if (opened.stat.uid === uid) fs.fchownSync(fd, prev[0] as number, prev[1] as number);
        } catch {
          /* gone, or not under the roots (the old run dir): nothing to give back */
        } finally {
          if (fd !== null) fs.closeSync(fd);
        }
      }
    }
    fs.rmSync(recordFile, { force: true });
  }
}

/**
 * Reads a JSON record the server wrote, or null: only a regular file of the server's user with one
 * link, in a directory of the server's user that nobody else can write (never one a QEMU user owns,
 * where a compromised QEMU could have written it), opened without following a symlink.
 */
function readRecord(file: string): unknown {
  const me = process.getuid?.() ?? 0;
  try {
    const dir = fs.lstatSync(path.dirname(file));
    if (!dir.isDirectory() || dir.uid !== me || (dir.mode & 0o022) !== 0) return null;
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== me || st.nlink !== 1) return null;
      return JSON.parse(fs.readFileSync(fd, 'utf8')) as unknown;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return null;
  }
}
