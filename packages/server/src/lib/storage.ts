import fs from 'node:fs';
import path from 'node:path';
import { AppError } from './errors.js';

/**
 * The only places images and ISOs may come from. A path is accepted when it is absolute, exists, is a
 * regular file, and its real path (all symlinks resolved) lies under one of the roots (themselves
 * resolved), so `..`, symlinks and bind tricks cannot reach the rest of the host.
 */
export class StorageRoots {
  private readonly roots: string[];
  /** The roots as configured (they may differ from the real ones when a parent is a symlink). */
  private readonly given: string[];

  constructor(roots: readonly string[]) {
    this.given = roots.map((r) => path.resolve(r));
    this.roots = roots.map((r) => {
      fs.mkdirSync(r, { recursive: true });
      return fs.realpathSync(r);
    });
  }

  get list(): readonly string[] {
    return this.roots;
  }

  /**
   * Roots that someone other than their owner may write (group- or other-writable, or not owned by
   * this process's user): whoever can write a root can replace an image's contents there, so roots
   * must be writable by the admin only. The server warns about these at start.
   */
  writableByOthers(uid: number | null = process.getuid?.() ?? null): string[] {
    return this.roots.filter((r) => {
      const st = fs.statSync(r);
      return (st.mode & 0o022) !== 0 || (uid !== null && st.uid !== uid);
    });
  }

  /** Returns the real path of an allowed regular file, or throws a 400/404 AppError saying why not. */
  resolveFile(input: string, what: 'disk' | 'ISO'): string {
    if (input.includes('\0')) throw new AppError('BAD_REQUEST', `${what} path contains a NUL byte`);
    if (!path.isAbsolute(input)) throw new AppError('BAD_REQUEST', `${what} path must be absolute: ${input}`);
    // Refuse on the path as written before touching the file system, so nothing outside the roots
    // can be probed; then again on the real path, so no symlink leads out.
    const lexical = path.resolve(input);
    if (!this.contains(lexical) && !under(this.given, lexical)) throw this.outside(input, what);
    let real: string;
    try {
      real = fs.realpathSync(input);
    } catch {
      throw new AppError('FILE_NOT_FOUND', `${what} file not found: ${input}`);
    }
    if (!this.contains(real)) throw this.outside(input, what);
    const st = fs.statSync(real);
    if (!st.isFile()) throw new AppError('NOT_A_REGULAR_FILE', `${what} path is not a regular file: ${input}`);
    return real;
  }

  /**
   * Opens an allowed file without following a symlink anywhere below its root: the path is checked
   * as resolveFile does, then opened one component at a time from a directory descriptor
   * (`/proc/self/fd/<dir>/<name>` with O_NOFOLLOW, the same as openat), so a component swapped for a
   * symlink after the check makes the open fail instead of reaching another file. The descriptor is
   * the file that was checked: hand it on (fchown, QEMU's -add-fd) rather than the path.
   * `flags` are the final open's access flags (fs.constants.O_RDONLY or O_RDWR). Caller closes the fd.
   */
  openFile(input: string, what: 'disk' | 'ISO', flags: number): OpenedFile {
    const real = this.resolveFile(input, what);
    const root = this.roots.filter((r) => under([r], real)).sort((a, b) => b.length - a.length)[0]!;
    const parts = path.relative(root, real).split(path.sep);
    const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW, O_NONBLOCK } = fs.constants;
    let fd = fs.openSync(root, O_RDONLY | O_DIRECTORY);
    try {
      parts.forEach((name, i) => {
        const last = i === parts.length - 1;
        const next = fs.openSync(`/proc/self/fd/${fd}/${name}`, O_NOFOLLOW | (last ? flags | O_NONBLOCK : O_RDONLY | O_DIRECTORY));
        fs.closeSync(fd);
        fd = next;
      });
    } catch (err) {
      fs.closeSync(fd);
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'ELOOP' || code === 'ENOTDIR') throw new AppError('PATH_NOT_ALLOWED', `${what} path changed while it was opened: ${input}`);
      if (code === 'ENOENT') throw new AppError('FILE_NOT_FOUND', `${what} file not found: ${input}`);
      if (code === 'EACCES' || code === 'EPERM') throw new AppError('FORBIDDEN', `${what} file cannot be opened: ${input}`);
      throw err;
    }
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) {
      fs.closeSync(fd);
      throw new AppError('NOT_A_REGULAR_FILE', `${what} path is not a regular file: ${input}`);
    }
    return { fd, real, stat };
  }

  private outside(input: string, what: string): AppError {
    return new AppError('PATH_NOT_ALLOWED', `${what} path is outside the storage roots (${this.roots.join(', ')}): ${input}`);
  }

  contains(realPath: string): boolean {
    return under(this.roots, realPath);
  }
}

export interface OpenedFile {
  fd: number;
  /** The real path that was checked and opened. */
  real: string;
  stat: fs.Stats;
}

function under(roots: readonly string[], p: string): boolean {
  return roots.some((r) => p === r || p.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
}
