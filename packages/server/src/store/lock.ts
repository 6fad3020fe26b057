import fs from 'node:fs';
import { isAlive, readCmdline } from '../lib/proc.js';

/**
 * One server per data dir: two would both adopt the same QEMUs and fight over them. The lock file
 * holds the owner's pid; a lock whose owner is gone (a crash) is taken over.
 * Returns a release function, or the pid of the live owner.
 */
export function lockDataDir(file: string): { release: () => void } | { owner: number } {
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      fs.writeFileSync(file, `${process.pid}\n`, { flag: 'wx' });
      return {
        release: () => {
          if (readOwner(file) === process.pid) fs.rmSync(file, { force: true });
        },
      };
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      const owner = readOwner(file);
      if (owner !== null && owner !== process.pid && isAlive(owner) && (readCmdline(owner)?.[0] ?? '').includes('node')) {
        return { owner };
      }
      fs.rmSync(file, { force: true });
    }
  }
  throw new Error(`cannot take the lock ${file}`);
}

function readOwner(file: string): number | null {
  try {
    const n = Number.parseInt(fs.readFileSync(file, 'utf8'), 10);
    return Number.isInteger(n) && n > 0 ? n : null;
  } catch {
    return null;
  }
}
