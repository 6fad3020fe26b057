/**
 * The admin CLI as a real process on a real data dir: the command line is parsed strictly, and a
 * token is checked with the API's own schema, so the CLI cannot make a token the API would refuse.
 */
import Database from 'better-sqlite3';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, repoRoot } from './harness.js';

const CLI = path.join(repoRoot, 'packages/server/dist/cli.js');

let dir: string;
beforeAll(() => {
  dir = makeDataDir();
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

function admin(...args: string[]) {
  const r = spawnSync(process.execPath, [CLI, ...args], { env: { ...process.env, DATA_DIR: dir }, encoding: 'utf8', input: '', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

function tokenRows(): Array<{ name: string; scope: string; created_at: string; expires_at: string | null }> {
  if (!fs.existsSync(path.join(dir, 'db.sqlite'))) return [];
  const db = new Database(path.join(dir, 'db.sqlite'), { readonly: true });
  try {
    return db.prepare('SELECT name, scope, created_at, expires_at FROM tokens ORDER BY created_at').all() as never;
  } finally {
    db.close();
  }
}

describe('admin CLI', () => {
  it('refuses malformed command lines with exit status 2 and the usage, creating nothing', () => {
    const bad: string[][] = [
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', 'abc'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', '0'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', '59'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', '-5'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', '1e4'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', '3600.5'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in', String(11 * 365 * 86400)],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expires-in=abc'],
      ['create-token', '--name', 'ci', '--scope', 'read', '--expiry', '3600'],
      ['create-token', '--name', 'ci', '--scope', 'read', 'extra'],
      ['create-token', '--name', 'ci', '--name', 'cd', '--scope', 'read'],
      ['create-token', '--name', '--scope', 'read'],
      ['create-token', '--name', 'ci', '--scope', 'write'],
      ['create-token', '--name', 'two\nlines', '--scope', 'read'],
      ['create-token', '--name', 'ci\n', '--scope', 'read'],
      ['create-token', '--name', 'tab\there', '--scope', 'read'],
      ['create-token', '--name', 'x'.repeat(64), '--scope', 'read'],
      ['create-token', '--scope', 'read'],
      ['set-password', '--force'],
      ['make-coffee'],
      [],
    ];
    for (const args of bad) {
      const r = admin(...args);
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr).toMatch(/usage: admin set-password/);
      expect(r.stdout).toBe('');
    }
    expect(tokenRows()).toEqual([]);
  });

  it('says which rule a refused token breaks', () => {
    expect(admin('create-token', '--name', 'ci', '--scope', 'read', '--expires-in', 'abc').stderr).toMatch(/--expires-in must be a whole number/);
    expect(admin('create-token', '--name', 'ci', '--scope', 'read', '--expires-in', '30').stderr).toMatch(/--expires-in: .*60/);
    expect(admin('create-token', '--name', 'a\nb', '--scope', 'read').stderr).toMatch(/--name: Expected string to match/);
    expect(admin('create-token', '--name', 'ci', '--scope', 'read', '--bogus', 'x').stderr).toMatch(/unknown option "--bogus"/);
  });

  it('creates valid tokens (both flag spellings) that expire when asked', () => {
    const a = admin('create-token', '--name', 'ci runner', '--scope', 'read', '--expires-in', '3600');
    expect(a.status).toBe(0);
    expect(a.stdout.trim()).toMatch(/^qmt_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/);
    const b = admin('create-token', '--name=deploy', '--scope=admin');
    expect(b.status).toBe(0);
    const rows = tokenRows();
    expect(rows.map((r) => [r.name, r.scope])).toEqual([
      ['ci runner', 'read'],
      ['deploy', 'admin'],
    ]);
    expect(Date.parse(rows[0].expires_at!) - Date.parse(rows[0].created_at)).toBe(3600_000);
    expect(rows[1].expires_at).toBeNull();
  });

  it('the API applies the same rules: a name with a newline or control character is refused', async () => {
    const s = await new TestServer(dir).start();
    try {
      for (const name of ['two\nlines', 'ci\n', 'tab\there', 'nul\u0000']) {
        const r = await s.api('POST', '/tokens', { name, scope: 'read' });
        expect(r.status).toBe(400);
        expect(r.body.code).toBe('VALIDATION');
      }
      expect((await s.api('POST', '/tokens', { name: 'ok', scope: 'read', expiresIn: 59 })).status).toBe(400);
      const list = await s.api('GET', '/tokens');
      expect(list.body.tokens.map((t: { name: string }) => t.name).sort()).toEqual(['ci runner', 'deploy']);
    } finally {
      await s.dispose({ keepDir: true });
    }
  });
});
