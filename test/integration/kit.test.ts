// The one test kit (test/kit/): the integration harness, the browser tests' server and the bench
// all use it, and its parts do what they promise against real processes (a real server, real QEMU).
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as bench from '../../bench/lib.mjs';
import * as e2e from '../../e2e/server.js';
import * as kit from '../kit/index.mjs';
import * as harness from './harness.js';

const PASSWORD = 'kit-test-password-7c1e';

describe('one kit for the three harnesses', () => {
  it('the integration harness, the e2e server and the bench re-export the kit, not copies', () => {
    for (const name of ['freePort', 'holdPort', 'qemuPidsOf', 'killQemusOf', 'waitFor', 'serialLog'] as const) {
      expect(harness[name], name).toBe(kit[name]);
    }
    for (const name of ['freePort', 'portFree', 'alive', 'sleep', 'nowMs'] as const) expect(bench[name], name).toBe(kit[name]);
    expect(e2e.repoRoot).toBe(kit.repoRoot);
    // The files themselves hold no process scan, port finder or server spawn of their own.
    for (const file of ['test/integration/harness.ts', 'e2e/server.ts', 'bench/lib.mjs', 'bench/server.mjs']) {
      const text = fs.readFileSync(path.join(kit.repoRoot, file), 'utf8');
      expect(text, file).not.toMatch(/readdirSync\('\/proc'\)|createServer\(|spawn\(|from 'node:net'/);
    }
  });
});

describe('ports and waiting', () => {
  it('a held port is not free; released, it is', async () => {
    const port = await kit.freePort();
    expect(await kit.portFree(port)).toBe(true);
    const blocker = await kit.holdPort(port);
    expect(await kit.portFree(port)).toBe(false);
    await new Promise((r) => blocker.close(r));
    expect(await kit.portFree(port)).toBe(true);
  });

  it('waitFor resolves with the value, or rejects saying what it waited for; poll gives undefined', async () => {
    let n = 0;
    expect(await kit.waitFor(() => ++n >= 3 && n, 5_000, 'three calls', 1)).toBe(3);
    await expect(kit.waitFor(() => false, 30, 'nothing', 5)).rejects.toThrow('timed out after 30 ms waiting for nothing');
    expect(await kit.poll(() => null, { timeoutMs: 20, intervalMs: 5 })).toBeUndefined();
    await expect(kit.poll(() => { throw new Error('boom'); }, { timeoutMs: 1000 })).rejects.toThrow('boom');
    expect(await bench.waitFor(() => false, 20, 5)).toBe(false); // the bench's boolean form
  });
});

describe('QEMU-pid scan', () => {
  const dir = kit.makeDataDir('qm-test-kit-');
  const children: ChildProcess[] = [];
  const qemu = (bin: string) => {
    // A real QEMU that mentions the dir on its command line and does nothing until killed.
    const c = spawn(bin, ['-machine', 'none', '-S', '-nographic', '-nodefaults', '-monitor', 'none', '-pidfile', path.join(dir, `${children.length}.pid`)], { stdio: 'ignore' });
    children.push(c);
    return c;
  };
  afterAll(() => {
    for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('finds the QEMUs mentioning a dir (by name or by full path), not other processes; kills them by pid', async () => {
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 60_000)', dir], { stdio: 'ignore' });
    children.push(other);
    const byName = qemu('qemu-system-x86_64');
    const byPath = qemu('/usr/bin/qemu-system-x86_64');
    await kit.waitFor(() => kit.qemuPidsOf(dir).length === 2, 10_000, 'both QEMUs in /proc');
    expect(kit.qemuPidsOf(dir).sort()).toEqual([byName.pid, byPath.pid].sort());
    expect(kit.pidsWithCmdline(dir).map((p) => p.pid)).toContain(other.pid);
    expect(kit.qemuPidsOf(path.join(dir, 'elsewhere'))).toEqual([]);

    expect(kit.killQemusOf(dir)).toBe(2);
    await kit.waitFor(() => kit.qemuPidsOf(dir).length === 0, 10_000, 'the QEMUs gone');
    expect(byName.signalCode ?? (await new Promise((r) => byName.once('exit', (_c, s) => r(s))))).toBe('SIGKILL');
    expect(kit.alive(other.pid!)).toBe(true);

    const third = qemu('qemu-system-x86_64');
    await kit.waitFor(() => kit.qemuPidsOf(dir).length === 1, 10_000, 'the third QEMU in /proc');
    expect(await kit.stopQemusOf(dir, { graceMs: 10_000 })).toEqual([third.pid]);
    expect(kit.alive(third.pid!)).toBe(false);
    expect(kit.cleanupDataDir(dir, { keep: true })).toBe(0);
    other.kill('SIGKILL');
  });
});

describe('server process', () => {
  const dirs: string[] = [];
  const dir = () => {
    const d = kit.makeDataDir('qm-test-kit-');
    dirs.push(d);
    return d;
  };
  afterAll(() => {
    for (const d of dirs) kit.cleanupDataDir(d);
  });

  /** A stand-in for the server: `body` decides whether it listens and how it treats SIGTERM. */
  const script = (d: string, body: string) => {
    const file = path.join(d, 'fake-main.mjs');
    fs.writeFileSync(file, body);
    return file;
  };

  it('escalates to SIGKILL when the server ignores SIGTERM', async () => {
    const d = dir();
    const main = script(d, `import http from 'node:http'; process.on('SIGTERM', () => console.log('ignoring SIGTERM'));
      http.createServer((q, s) => s.end('{}')).listen(Number(process.env.PORT), process.env.HOST, () => console.log('up in', process.env.DATA_DIR));`);
    const s = await kit.startServer({ dataDir: d, main });
    expect(s.log()).toContain(`up in ${d}`);
    await s.stop({ graceMs: 300 });
    expect(s.child.signalCode).toBe('SIGKILL');
    expect(s.log()).toContain('ignoring SIGTERM');
    expect(kit.alive(s.pid)).toBe(false);
  });

  it('rejects with the log when the server exits, and stops one that never answers', async () => {
    const d = dir();
    await expect(kit.startServer({ dataDir: d, main: script(d, `console.error('bad config'); process.exit(3);`) })).rejects.toThrow(/exited with 3:\nbad config/);
    const logFile = path.join(d, 'server.log');
    const silent = kit.startServer({ dataDir: d, main: script(d, `console.log('pid', process.pid); setInterval(() => {}, 1000);`), readyTimeoutMs: 5000, logFile });
    // (5 s: long enough for node itself to start and print on a loaded host, so the log is there)
    await expect(silent).rejects.toThrow(/did not answer \/api\/health within 5 s:\npid \d+/);
    const pid = Number(/pid (\d+)/.exec(fs.readFileSync(logFile, 'utf8'))![1]);
    expect(kit.alive(pid)).toBe(false);
  });

  describe('the real server', () => {
    let s: kit.ServerProcess;
    let d: string;
    beforeAll(async () => {
      d = dir();
      s = await kit.startServer({ dataDir: d, env: { AUTH: 'required', ADMIN_PASSWORD: PASSWORD, ACCEL: 'tcg', WEB_DIR: '', LOG_LEVEL: 'info' } });
    });
    afterAll(async () => {
      await s?.stop();
    });

    it('answers through the API client with a cookie from login() or a token, and stopAllVms stops its VMs', async () => {
      expect(s.url).toBe(`http://127.0.0.1:${s.port}`);
      expect((await kit.request(s.url, 'GET', '/api/vms')).status).toBe(401);
      const cookie = await kit.login(s.url, PASSWORD);
      expect(cookie).toMatch(/^qm_session=/);
      const made = await kit.request(s.url, 'POST', '/api/tokens', { name: 'kit', scope: 'admin' }, { cookie });
      expect(made.status).toBe(201);
      const { token } = made.body as { token: string };
      const bad = await kit.request(s.url, 'POST', '/api/vms', 'name=x', { token, headers: { 'Content-Type': 'text/plain' } });
      expect(bad.status).toBe(415);
      expect(bad.body).toMatchObject({ code: expect.any(String), error: expect.any(String) });

      const vm = await kit.request(s.url, 'POST', '/api/vms', { name: 'kit', cpus: 1, memory: 64 }, { token });
      expect(vm.status).toBe(201);
      const id = (vm.body as { vm: { id: string } }).vm.id;
      expect((await kit.request(s.url, 'POST', `/api/vms/${id}/start`, undefined, { token })).status).toBe(200);
      expect(kit.qemuPidsOf(d)).toHaveLength(1);
      expect(await kit.stopAllVms(s.url, { token })).toBe(0);
      expect((await kit.request(s.url, 'GET', `/api/vms/${id}`, undefined, { cookie })).body.vm.status).toBe('stopped');
      await kit.waitFor(() => kit.qemuPidsOf(d).length === 0, 20_000, 'QEMU to exit');
    });

    it('stops by SIGTERM, and cleanupDataDir kills the QEMU it left and removes the dir', async () => {
      const token = (await kit.request(s.url, 'POST', '/api/tokens', { name: 'kit2', scope: 'admin' }, { cookie: await kit.login(s.url, PASSWORD) })).body.token as string;
      const id = (await kit.request(s.url, 'POST', '/api/vms', { name: 'left', cpus: 1, memory: 64 }, { token })).body.vm.id as string;
      expect((await kit.request(s.url, 'POST', `/api/vms/${id}/start`, undefined, { token })).status).toBe(200);
      await s.stop();
      expect(s.child.signalCode ?? s.child.exitCode).not.toBe('SIGKILL');
      expect(s.log()).not.toBe('');
      expect(kit.qemuPidsOf(d)).toHaveLength(1); // VMs outlive the server
      expect(kit.cleanupDataDir(d)).toBe(1);
      await kit.waitFor(() => kit.qemuPidsOf(d).length === 0, 10_000, 'the QEMU killed');
      expect(fs.existsSync(d)).toBe(false);
    });
  });
});
