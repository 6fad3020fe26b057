/**
 * Regression: the admin CLI (packages/server/dist/cli.js as a real process) against a server
 * running in-process on the same data dir: the password it sets is the one the server accepts
 * (and sessions opened before end), the tokens it makes are listed, accepted and revocable through
 * the API, and bad usage exits non-zero with a message. (test/integration/admin-cli.test.ts covers
 * the create-token command line in depth.)
 */
import type { CreatedToken, TokenListEnvelope } from '@qemu-manager/contract';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StartupError } from '../../packages/server/src/app.js';
import { makeTempDir, startInProcess, type InProcessServer } from './app.js';

const CLI = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../packages/server/dist/cli.js');

let dir: string;
function admin(args: string[], input = '') {
  const env: NodeJS.ProcessEnv = { ...process.env, DATA_DIR: dir };
  delete env.INIT_CWD;
  const r = spawnSync(process.execPath, [CLI, ...args], { env, input, encoding: 'utf8', timeout: 30_000 });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('admin CLI with a server on the same data dir (regression: the admin CLI)', () => {
  let s: InProcessServer | undefined;
  beforeAll(() => {
    if (!fs.existsSync(CLI)) throw new Error(`${CLI} is missing: run \`npx tsc -b packages/server\` first`);
    dir = makeTempDir('qm-inproc-cli-');
  });
  afterAll(async () => {
    await s?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });
  const login = (password: string) => s!.api('POST', '/auth/login', { password });

  it('without a password the server refuses to start with authentication on, and names the command', async () => {
    await expect(startInProcess({ dataDir: dir, keepDir: true, env: { AUTH: 'required' } })).rejects.toThrow(StartupError);
    await expect(startInProcess({ dataDir: dir, keepDir: true, env: { AUTH: 'required' } })).rejects.toThrow(/npm run admin -- set-password/);
  });

  it('set-password (from stdin): the server accepts exactly that password', async () => {
    const r = admin(['set-password'], 'first password 1\n');
    expect(r.status).toBe(0);
    expect(r.stderr).toContain(`Admin password set in ${dir}; existing sessions were ended.`);
    expect(r.stdout).toBe('');
    s = await startInProcess({ dataDir: dir, keepDir: true, env: { AUTH: 'required' } });
    expect((await login('first password 1')).status).toBe(200);
    expect((await login('first password 1\n')).status).toBe(401);
    expect((await login('first password')).status).toBe(401);
  });

  it('set-password while the server runs: the new password works, the old one and its sessions no longer', async () => {
    const cookie = String((await login('first password 1')).headers['set-cookie']).split(';')[0];
    expect((await s!.api('GET', '/vms', undefined, { cookie })).status).toBe(200);
    const r = admin(['set-password'], 'second password 2');
    expect(r.status).toBe(0);
    expect((await s!.api('GET', '/vms', undefined, { cookie })).status).toBe(401);
    expect((await login('first password 1')).status).toBe(401);
    expect((await login('second password 2')).status).toBe(200);
  });

  it('a password the server would refuse is refused (exit 1, the rule named) and the old one stays', async () => {
    const r = admin(['set-password'], 'short');
    expect(r.status).toBe(1);
    expect(r.stderr).toContain('The admin password needs at least 8 characters');
    expect((await login('second password 2')).status).toBe(200);
  });

  it('create-token: the token works through the API, is listed there, and once revoked is refused', async () => {
    const r = admin(['create-token', '--name', 'from-cli', '--scope', 'read', '--expires-in', '3600']);
    expect(r.status).toBe(0);
    const token = r.stdout.trim();
    expect(token).toMatch(/^qmt_[0-9a-f-]{36}_[A-Za-z0-9_-]{43}$/);
    const bearer = { authorization: `Bearer ${token}` };
    expect((await s!.api('GET', '/vms', undefined, bearer)).status).toBe(200);
    expect((await s!.api('POST', '/vms', { name: 'x', cpus: 1, memory: 64 }, bearer)).status).toBe(403);

    const cookie = String((await login('second password 2')).headers['set-cookie']).split(';')[0];
    const list = (await s!.api('GET', '/tokens', undefined, { cookie })).body as TokenListEnvelope;
    const listed = list.tokens.find((t) => t.name === 'from-cli');
    expect(listed).toMatchObject({ scope: 'read', revokedAt: null, id: token.slice(4, 40) });
    expect(Date.parse(listed!.expiresAt!) - Date.parse(listed!.createdAt)).toBe(3600_000);

    const adminToken = admin(['create-token', '--name=ops', '--scope=admin']).stdout.trim();
    const made = await s!.api('POST', '/tokens', { name: 'via-api', scope: 'read' }, { authorization: `Bearer ${adminToken}` });
    expect(made.status).toBe(201);
    expect((made.body as CreatedToken).name).toBe('via-api');

    expect((await s!.api('DELETE', `/tokens/${listed!.id}`, undefined, { cookie })).status).toBe(200);
    expect((await s!.api('GET', '/vms', undefined, bearer)).status).toBe(401);
    const after = (await s!.api('GET', '/tokens', undefined, { cookie })).body as TokenListEnvelope;
    expect(after.tokens.find((t) => t.id === listed!.id)?.revokedAt).not.toBeNull();
  });

  it('bad usage exits 2 with the usage and changes nothing', async () => {
    const cookie = String((await login('second password 2')).headers['set-cookie']).split(';')[0];
    const before = ((await s!.api('GET', '/tokens', undefined, { cookie })).body as TokenListEnvelope).tokens.length;
    for (const [args, why] of [
      [['rotate-keys'], 'unknown command "rotate-keys"'],
      [[], 'no command given'],
      [['set-password', 'extra'], 'unexpected argument "extra"'],
      [['create-token', '--name', 'x'], '--name and --scope are required'],
    ] as Array<[string[], string]>) {
      const r = admin(args, 'a long enough password');
      expect({ args, status: r.status }).toEqual({ args, status: 2 });
      expect(r.stderr).toContain(why);
      expect(r.stderr).toContain('usage: admin set-password');
      expect(r.stdout).toBe('');
    }
    expect((await login('second password 2')).status).toBe(200);
    expect(((await s!.api('GET', '/tokens', undefined, { cookie })).body as TokenListEnvelope).tokens.length).toBe(before);
  });
});
