import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';

export type Db = Database.Database;

const here = path.dirname(new URL(import.meta.url).pathname);
// The .sql files live beside the sources; the compiled module in dist/ reads them from src/.
const MIGRATIONS_DIR = fs.existsSync(path.join(here, 'migrations'))
  ? path.join(here, 'migrations')
  : path.resolve(here, '../../src/store/migrations');

/** The data dir: other users may pass through it (QEMU users reach their run dirs) but not list it. */
const DATA_DIR_MODE = 0o711;
/** The database holds the admin's password hash and the tokens' hashes: owner only. */
const DB_FILE_MODE = 0o600;

/** Creates the data dir if needed and sets its mode, whatever it was before. */
export function prepareDataDir(dir: string): void {
  fs.mkdirSync(dir, { recursive: true, mode: DATA_DIR_MODE });
  fs.chmodSync(dir, DATA_DIR_MODE);
}

/** The database file and SQLite's -wal and -shm beside it, owner-only (existing ones included). */
function restrictDbFiles(file: string): void {
  for (const f of [file, `${file}-wal`, `${file}-shm`]) {
    try {
      if ((fs.statSync(f).mode & 0o777) !== DB_FILE_MODE) fs.chmodSync(f, DB_FILE_MODE);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
    }
  }
}

/** Opens (creating if needed) the SQLite file in WAL mode with foreign keys on, and applies migrations. */
export function openDb(file: string, migrationsDir = MIGRATIONS_DIR): Db {
  // Created owner-only before SQLite opens it: SQLite gives -wal and -shm the database file's mode.
  fs.closeSync(fs.openSync(file, 'a', DB_FILE_MODE));
  restrictDbFiles(file);
  const db = new Database(file);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.pragma('foreign_keys = ON');
  db.pragma('busy_timeout = 5000');
  migrate(db, migrationsDir);
  restrictDbFiles(file);
  return db;
}

/** Applies every `NNN-name.sql` in order that has not been applied yet, each in a transaction. */
function migrate(db: Db, dir: string): string[] {
  db.exec('CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)');
  const done = new Set(
    db.prepare('SELECT name FROM schema_migrations').pluck().all() as string[],
  );
  const files = fs
    .readdirSync(dir)
    .filter((f) => /^\d{3}-[a-z0-9-]+\.sql$/.test(f))
    .sort();
  const applied: string[] = [];
  for (const f of files) {
    if (done.has(f)) continue;
    const sql = fs.readFileSync(path.join(dir, f), 'utf8');
    db.transaction(() => {
      db.exec(sql);
      db.prepare('INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)').run(f, new Date().toISOString());
    })();
    applied.push(f);
  }
  return applied;
}
