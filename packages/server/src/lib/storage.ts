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

  constructor(roots: readonly string[]) {
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
    let real: string;
    try {
      real = fs.realpathSync(input);
    } catch {
      throw new AppError(404, 'FILE_NOT_FOUND', `${what} file not found: ${input}`);
    }
    if (!this.contains(real)) {
      throw new AppError(
        400,
        'PATH_NOT_ALLOWED',
        `${what} path is outside the storage roots (${this.roots.join(', ')}): ${input}`,
      );
    }
    const st = fs.statSync(real);
    if (!st.isFile()) throw new AppError(400, 'NOT_A_REGULAR_FILE', `${what} path is not a regular file: ${input}`);
    return real;
  }

  contains(realPath: string): boolean {
    return this.roots.some((r) => realPath === r || realPath.startsWith(r.endsWith(path.sep) ? r : r + path.sep));
  }
}
