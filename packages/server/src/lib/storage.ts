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

  /** Returns the real path of an allowed regular file, or throws a 400/404 AppError saying why not. */
  resolveFile(input: string, what: 'disk' | 'ISO'): string {
    if (input.includes('\0')) throw new AppError(400, 'BAD_REQUEST', `${what} path contains a NUL byte`);
    if (!path.isAbsolute(input)) throw new AppError(400, 'BAD_REQUEST', `${what} path must be absolute: ${input}`);
    // Refuse on the path as written before touching the file system, so nothing outside the roots
    // can be probed; then again on the real path, so no symlink leads out.
    const lexical = path.resolve(input);
    if (!this.contains(lexical) && !under(this.given, lexical)) throw this.outside(input, what);
    let real: string;
    try {
      real = fs.realpathSync(input);
    } catch {
      throw new AppError(404, 'FILE_NOT_FOUND', `${what} file not found: ${input}`);
    }
    if (!this.contains(real)) throw this.outside(input, what);
    const st = fs.statSync(real);
    if (!st.isFile()) throw new AppError(400, 'NOT_A_REGULAR_FILE', `${what} path is not a regular file: ${input}`);
    return real;
  }

  private outside(input: string, what: string): AppError {
    return new AppError(400, 'PATH_NOT_ALLOWED', `${what} path is outside the storage roots (${this.roots.join(', ')}): ${input}`);
  }

  contains(realPath: string): boolean {
    return under(this.roots, realPath);
  }
}

function under(roots: readonly string[], p: string): boolean {
  return roots.some((r) => p === r || p.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
}
