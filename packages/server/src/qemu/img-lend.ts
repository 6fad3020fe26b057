import fs from 'node:fs';
import path from 'node:path';
import type { StorageRoots } from '../lib/storage.js';

/** A file lent to the image tool's group: which file (device and inode) and what it goes back to. */
export interface LentFile {
  path: string;
  dev: number;
  ino: number;
  uid: number;
  gid: number;
  /** The permission bits (mode & 0o7777) before the lend. */
  mode: number;
}

/** The mode of a lent file: its owner as before, the tool's group may read it, nobody may write it but its owner. */
export const LENT_MODE = 0o640;

/**
 * Read-only lends of checked images to the unprivileged qemu-img user, for one copy's duration.
 *
 * `lend` takes a descriptor the server opened and checked itself and changes that very descriptor
 * (fchown of the group, fchmod 0640: never the path, never write), so the qemu-img user can reopen
 * it through `/proc/self/fd/N`; the file's previous owner, group and mode are written to the record
 * file (a temp name renamed over it, in the server's run directory) BEFORE the change, so a crash
 * cannot lose them. The returned give-back restores them on a descriptor of the same file. Two
 * copies reading one file at once share one lend, given back when the last one ends. `recover`
 * (server start) gives back whatever a crash left lent, each file only if it is still the same
 * device and inode, opened under the storage roots without following a symlink.
 *
 * Only files owned by the server's own user are lent: a file of another user (an ISO lent to a VM's
 * QEMU user by Ownership, a user's own image) is left alone and read the other way (NBD).
 */
export class ImageLender {
  private readonly lent = new Map<string, { entry: LentFile; count: number }>();

  constructor(
    private readonly recordFile: string,
    private readonly storage: StorageRoots,
  ) {}

  /**
   * Lends the file open at `fd` (real path `real`) to group `gid` read-only. Returns the give-back
   * (call it before closing `fd`; calling it twice does nothing), or null when the file is not lent.
   */
  lend(fd: number, real: string, gid: number): (() => void) | null {
    const st = fs.fstatSync(fd);
    if (!st.isFile() || st.uid !== (process.getuid?.() ?? -1)) return null;
    const key = `${st.dev}:${st.ino}`;
    const held = this.lent.get(key);
    if (held) {
      held.count++;
    } else {
      const entry: LentFile = { path: real, dev: st.dev, ino: st.ino, uid: st.uid, gid: st.gid, mode: st.mode & 0o7777 };
      this.lent.set(key, { entry, count: 1 });
      try {
        this.save(); // recorded before the change
        fs.fchownSync(fd, st.uid, gid);
        fs.fchmodSync(fd, LENT_MODE);
      } catch (err) {
        this.lent.delete(key);
        restore(fd, entry);
        this.save();
        throw err;
      }
    }
    let given = false;
    return () => {
      if (given) return;
      given = true;
      const h = this.lent.get(key);
      if (!h) return;
      if (--h.count > 0) return;
      this.lent.delete(key);
      restore(fd, h.entry);
      this.save();
    };
  }

  /** Files lent right now (tests, the log). */
  current(): LentFile[] {
    return [...this.lent.values()].map((h) => h.entry);
  }

  /**
   * Gives back what the record file lists (a server that died during a copy), then removes it.
   * Returns the files given back and those that could not be (gone, replaced, no longer under the roots).
   */
  recover(): { restored: string[]; skipped: string[] } {
    const restored: string[] = [];
    const skipped: string[] = [];
    const list = readRecord(this.recordFile);
    for (const l of list) {
      let fd: number | null = null;
      try {
        const opened = this.storage.openFile(l.path, 'disk', fs.constants.O_RDONLY);
        fd = opened.fd;
        if (opened.stat.dev === l.dev && opened.stat.ino === l.ino) {
          restore(fd, l);
          restored.push(l.path);
        } else {
          skipped.push(l.path);
        }
      } catch {
        skipped.push(l.path);
      } finally {
        if (fd !== null) fs.closeSync(fd);
      }
    }
    if (this.lent.size === 0) fs.rmSync(this.recordFile, { force: true });
    else this.save();
    return { restored, skipped };
  }

  private save(): void {
    const list = this.current();
    if (list.length === 0) return void fs.rmSync(this.recordFile, { force: true });
    const tmp = `${this.recordFile}.tmp`;
    fs.rmSync(tmp, { force: true });
    fs.writeFileSync(tmp, JSON.stringify(list), { mode: 0o600, flag: 'wx' });
    fs.renameSync(tmp, this.recordFile);
  }
}

function restore(fd: number, l: LentFile): void {
  fs.fchownSync(fd, l.uid, l.gid);
  fs.fchmodSync(fd, l.mode);
}

/**
 * The record, or [] when there is none or it is not the server's own: a regular file of the
 * server's user with one link, in a directory of the server's user that nobody else can write,
 * opened without following a symlink. Entries that are not well-formed are dropped.
 */
export function readRecord(file: string): LentFile[] {
  const me = process.getuid?.() ?? 0;
  let parsed: unknown;
  try {
    const dir = fs.lstatSync(path.dirname(file));
    if (!dir.isDirectory() || dir.uid !== me || (dir.mode & 0o022) !== 0) return [];
    const fd = fs.openSync(file, fs.constants.O_RDONLY | fs.constants.O_NOFOLLOW | fs.constants.O_NONBLOCK);
    try {
      const st = fs.fstatSync(fd);
      if (!st.isFile() || st.uid !== me || st.nlink !== 1) return [];
      parsed = JSON.parse(fs.readFileSync(fd, 'utf8')) as unknown;
    } finally {
      fs.closeSync(fd);
    }
  } catch {
    return [];
  }
  if (!Array.isArray(parsed)) return [];
  const int = (v: unknown) => Number.isSafeInteger(v) && (v as number) >= 0;
  return (parsed as unknown[]).filter((v): v is LentFile => {
    if (typeof v !== 'object' || v === null) return false;
    const l = v as Record<string, unknown>;
    return typeof l.path === 'string' && path.isAbsolute(l.path) && int(l.dev) && int(l.ino) && int(l.uid) && int(l.gid) && int(l.mode) && (l.mode as number) <= 0o7777;
  });

}
