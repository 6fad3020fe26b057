/**
 * The `qemu-manager` CLI against the real server (buildApp on a loopback port, fake hypervisor):
 * every command's --json output parsed and checked against the contract's schemas, names resolved
 * to ids, exit statuses (0 ok, 1 API error, 2 usage), the config file's mode rule, the event stream,
 * the admin delegation and the completion script loaded in bash. Real QEMU: test/integration/cli.test.ts.
 */
import {
  BackupListEnvelope,
  CloudInitEnvelope,
  ImageCatalogueEnvelope,
  ImageEnvelope,
  ImageListEnvelope,
  BackupScheduleEnvelope,
  BackupScheduleListEnvelope,
  BackupTargetEnvelope,
  BackupTargetListEnvelope,
  DiskEnvelope,
  CreatedDiskEnvelope,
  CreatedToken,
  DiskListEnvelope,
  IsoEnvelope,
  IsoListEnvelope,
  MessageBody,
  ServerEvent,
  SnapshotListEnvelope,
  StartEnvelope,
  TaskEnvelope,
  TaskListEnvelope,
  TokenListEnvelope,
  VmEnvelope,
  VmListEnvelope,
} from '@qemu-manager/contract';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, type Io } from '../../packages/cli/src/program.js';
import { repoRoot } from '../kit/index.mjs';
import { makeTempDir, startInProcess, type InProcessServer } from './app.js';
import { expectShape } from './check.js';

const BIN = path.join(repoRoot, 'packages/cli/bin/qemu-manager.mjs');

let srv: InProcessServer;
let url: string;
let token: string;
let home: string;

interface Result {
  code: number;
  out: string;
  err: string;
}

async function cli(
  args: string[],
  env: Record<string, string> = { QM_URL: url, QM_TOKEN: token },
  signal?: AbortSignal,
  onOut?: (s: string) => void,
  isTTY = false,
): Promise<Result> {
  let out = '';
  let err = '';
  const io: Io = {
    out: (s) => {
      out += s;
      onOut?.(out);
    },
    err: (s) => (err += s),
    env,
    home,
    isTTY,
    ...(signal ? { signal } : {}),
  };
  const code = await run(args, io);
  return { code, out, err };
}

async function json(args: string[]): Promise<any> {
  const r = await cli([...args, '--json']);
  expect(r, r.err).toMatchObject({ code: 0 });
  return JSON.parse(r.out);
}

function spawnBin(args: string[], env: NodeJS.ProcessEnv): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  srv = await startInProcess({ env: { AUTH: 'required', ADMIN_PASSWORD: 'cli-test-password' } });
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = srv.app.server.address();
  if (typeof addr !== 'object' || addr === null) throw new Error('no address');
  url = `http://127.0.0.1:${addr.port}`;
  home = makeTempDir('qm-cli-home-');
  // The admin commands go to the server's admin CLI on the data dir (a real process through the bin).
  const made = spawnSync(process.execPath, [BIN, 'admin', 'create-token', '--name', 'cli-test', '--scope', 'admin'], {
    env: { ...process.env, DATA_DIR: srv.dataDir },
    encoding: 'utf8',
  });
  expect(made.status, made.stderr).toBe(0);
  token = made.stdout.trim();
  expect(token).toMatch(/^qmt_/);
}, 120_000); // the bin builds packages/cli first when its dist is missing or stale

afterAll(async () => {
  await srv?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe('qemu-manager CLI', () => {
  it('exit statuses: 2 for a bad flag or command, 1 for an API error with its message and code, 0 for help', async () => {
    expect((await cli(['vm', 'ls', '--bogus'])).code).toBe(2);
    expect((await cli(['vm', 'frobnicate'])).code).toBe(2);
    expect((await cli(['vm', 'create', 'x', '--cpus', 'two', '--memory', '64'])).code).toBe(2);
    expect((await cli(['--help'])).code).toBe(0);
    const missing = await cli(['vm', 'show', 'no-such-vm']);
    expect(missing.code).toBe(1);
    expect(missing.err).toMatch(/VM_NOT_FOUND/);
    const noToken = await cli(['vm', 'ls'], { QM_URL: url });
    expect(noToken.code).toBe(1);
    expect(noToken.err).toMatch(/\(UNAUTHORIZED\)|\(AUTH_REQUIRED\)|\([A-Z_]+\)/);
    const unreachable = await cli(['vm', 'ls'], { QM_URL: 'http://127.0.0.1:1', QM_TOKEN: token });
    expect(unreachable).toMatchObject({ code: 1 });
    expect(unreachable.err).toMatch(/cannot reach/);
  });

  it('service install/uninstall --root go to the admin CLI: the units appear under the root only, then go', () => {
    const root = makeTempDir('qm-cli-root-');
    try {
      const env = { ...process.env, DATA_DIR: srv.dataDir };
      const inst = spawnSync(process.execPath, [BIN, 'service', 'install', '--root', root], { env, encoding: 'utf8' });
      expect(inst.status, inst.stderr).toBe(0);
      const units = path.join(root, 'etc/systemd/system');
      expect(fs.readdirSync(units).sort()).toEqual(['qemu-manager-guests.service', 'qemu-manager.service']);
      expect(fs.readFileSync(path.join(units, 'qemu-manager.service'), 'utf8')).toMatch(/^KillMode=process$/m);
      const un = spawnSync(process.execPath, [BIN, 'service', 'uninstall', '--root', root], { env, encoding: 'utf8' });
      expect(un.status, un.stderr).toBe(0);
      expect(fs.readdirSync(units)).toEqual([]);
      expect(spawnSync(process.execPath, [BIN, 'host', 'shutdown-vms', '--bogus'], { env, encoding: 'utf8' }).status).toBe(2);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('the bin as a process: a bad flag exits 2, a VM that does not exist exits 1', async () => {
    // Not spawnSync: the server answering it runs in this process.
    const env = { ...process.env, QM_URL: url, QM_TOKEN: token, HOME: home };
    const bad = await spawnBin(['vm', 'ls', '--nope'], env);
    expect(bad.status).toBe(2);
    const none = await spawnBin(['vm', 'show', 'ghost', '--json'], env);
    expect(none.status).toBe(1);
    expect(none.stderr).toMatch(/VM_NOT_FOUND/);
  });

  it('vm create, ls, show by name and id, start, reboot, shutdown, stop, rm', async () => {
    const created = await json(['vm', 'create', 'cli-vm', '--cpus', '1', '--memory', '64']);
    expectShape(VmEnvelope, created);
    const id: string = created.vm.id;
    const list = await json(['vm', 'ls']);
    expectShape(VmListEnvelope, list);
    expect(list.vms.map((v: any) => v.name)).toContain('cli-vm');
    expect((await json(['vm', 'show', 'cli-vm'])).vm.id).toBe(id);
    expect((await json(['vm', 'show', id])).vm.name).toBe('cli-vm');
    const human = await cli(['vm', 'ls']);
    expect(human.out.split('\n')[0]).toMatch(/^NAME\s+STATUS\s+CPUS/);
    expect(human.out).toMatch(new RegExp(`cli-vm\\s+stopped\\s+1\\s+64 MiB.*${id}`));

    const set = await json(['vm', 'set', 'cli-vm', '--cpus', '2', '--memory', '128']);
    expectShape(VmEnvelope, set);
    expect(set.vm).toMatchObject({ cpus: 2, memory: 128 });
    expect((await cli(['vm', 'set', 'cli-vm'])).code).toBe(2);
    const started = await json(['vm', 'start', 'cli-vm']);
    expectShape(StartEnvelope, started);
    expect(started.vm.status).toBe('running');
    expectShape(StartEnvelope, await json(['vm', 'reboot', 'cli-vm', '--timeout', '5', '--force']));
    const down = await json(['vm', 'shutdown', 'cli-vm', '--timeout', '5', '--force']);
    expectShape(VmEnvelope, down);
    expect(down.vm.status).toBe('stopped');
    await json(['vm', 'start', id]);
    expectShape(MessageBody, await json(['vm', 'stop', 'cli-vm']));
    expect((await json(['vm', 'show', 'cli-vm'])).vm.status).toBe('stopped');
    expectShape(MessageBody, await json(['vm', 'rm', 'cli-vm']));
    expect((await cli(['vm', 'show', 'cli-vm'])).code).toBe(1);
  });

  it('disk create --wait, ls, attach and detach by name, resize --wait, rm; task ls, wait and cancel', async () => {
    const vm = (await json(['vm', 'create', 'disk-vm', '--cpus', '1', '--memory', '64'])).vm;
    const created = await json(['disk', 'create', 'cli-disk', '--size', '1', '--format', 'qcow2', '--wait']);
    expectShape(CreatedDiskEnvelope, created);
    expect(created.disk.status).toBe('ready');
    const disks = await json(['disk', 'ls']);
    expectShape(DiskListEnvelope, disks);
    const attached = await json(['disk', 'attach', 'disk-vm', 'cli-disk']);
    expectShape(VmEnvelope, attached);
    expect(attached.vm.disks.map((d: any) => d.path)).toEqual([created.disk.path]);
    const resized = await json(['disk', 'resize', 'cli-disk', '--size', '2', '--wait']);
    expectShape(TaskEnvelope, resized);
    expect(resized.task.status).toBe('succeeded');
    expect((await json(['disk', 'ls'])).disks.find((d: any) => d.name === 'cli-disk').size).toBe(2);
    // Progress is drawn on a terminal only (stderr), and --json output stays the same.
    const quiet = await cli(['disk', 'create', 'bar-off', '--size', '1', '--wait', '--json']);
    expect(quiet.err).toBe('');
    const drawn = await cli(['disk', 'create', 'bar-on', '--size', '1', '--wait', '--json'], undefined, undefined, undefined, true);
    expect(drawn.code).toBe(0);
    expect(drawn.err).toMatch(/disk\.create succeeded\s+\[#{30}\] 100%/);
    expectShape(CreatedDiskEnvelope, JSON.parse(drawn.out));
    await json(['disk', 'rm', 'bar-off']);
    await json(['disk', 'rm', 'bar-on']);
    const detached = await json(['disk', 'detach', 'disk-vm', 'cli-disk']);
    expect(detached.vm.disks).toEqual([]);

    const tasks = await json(['task', 'ls', '--limit', '10']);
    expectShape(TaskListEnvelope, tasks);
    expect(tasks.tasks.map((t: any) => t.kind)).toEqual(expect.arrayContaining(['disk.create']));
    const waited = await json(['task', 'wait', resized.task.id]);
    expectShape(TaskEnvelope, waited);
    const cancel = await cli(['task', 'cancel', resized.task.id]);
    expect(cancel.code).toBe(1);
    expect(cancel.err).toMatch(/TASK_FINISHED/);
    expect((await cli(['task', 'wait', '00000000-0000-4000-8000-000000000000'])).err).toMatch(/TASK_NOT_FOUND/);

    expectShape(MessageBody, await json(['disk', 'rm', 'cli-disk']));
    expect((await cli(['disk', 'rm', 'cli-disk'])).code).toBe(1);
    await json(['vm', 'rm', vm.id]);
  });

  it('iso upload, ls, mount by library name, eject', async () => {
    const file = path.join(home, 'tiny.iso');
    const img = Buffer.alloc(64 * 1024);
    img.write('\x01CD001', 0x8000, 'latin1');
    fs.writeFileSync(file, img);
    const up = await json(['iso', 'upload', file]);
    expectShape(IsoEnvelope, up);
    expect(up.iso).toMatchObject({ name: 'tiny.iso', size: img.length });
    const list = await json(['iso', 'ls']);
    expectShape(IsoListEnvelope, list);
    expect(list.isos.map((i: any) => i.name)).toContain('tiny.iso');
    await json(['vm', 'create', 'iso-vm', '--cpus', '1', '--memory', '64']);
    const mounted = await json(['iso', 'mount', 'iso-vm', 'tiny.iso']);
    expectShape(VmEnvelope, mounted);
    expect(mounted.vm.iso).toBe(up.iso.path);
    expect((await json(['iso', 'eject', 'iso-vm'])).vm.iso).toBeNull();
    await json(['vm', 'rm', 'iso-vm']);
  });

  it('snapshot create --wait, ls, revert, rm; backup create --wait, ls, verify, rm', async () => {
    await json(['vm', 'create', 'snap-vm', '--cpus', '1', '--memory', '64']);
    await json(['disk', 'create', 'snap-disk', '--size', '1', '--wait']);
    await json(['disk', 'attach', 'snap-vm', 'snap-disk']);
    const made = await json(['snapshot', 'create', 'snap-vm', 'first', '--description', 'from the CLI', '--wait']);
    expect(made.task.status).toBe('succeeded');
    const snaps = await json(['snapshot', 'ls', 'snap-vm']);
    expectShape(SnapshotListEnvelope, snaps);
    expect(snaps.snapshots.map((s: any) => [s.name, s.description])).toEqual([['first', 'from the CLI']]);
    expect((await json(['snapshot', 'revert', 'snap-vm', 'first', '--wait'])).task.status).toBe('succeeded');
    expect((await json(['snapshot', 'rm', 'snap-vm', 'first', '--wait'])).task.status).toBe('succeeded');
    expect((await json(['snapshot', 'ls', 'snap-vm'])).snapshots).toEqual([]);

    const b = await json(['backup', 'create', 'snap-vm', '--wait']);
    expect(b.task.status).toBe('succeeded');
    const backups = await json(['backup', 'ls', '--vm', 'snap-vm']);
    expectShape(BackupListEnvelope, backups);
    expect(backups.backups).toHaveLength(1);
    const id: string = backups.backups[0].id;
    expect((await cli(['backup', 'restore', id])).code).toBe(2); // neither --replace nor --as-new
    expect((await json(['backup', 'verify', id, '--wait'])).task.status).toBe('succeeded');
    expect((await json(['backup', 'rm', id, '--wait'])).task.status).toBe('succeeded');
    expect((await json(['backup', 'ls'])).backups).toEqual([]);
  });

  it('disk upload (bar on a TTY), clone --linked --wait, convert --format --wait, import URL --sha256 --format --wait', async () => {
    const file = path.join(home, 'up.img');
    const img = Buffer.alloc(256 * 1024, 7);
    fs.writeFileSync(file, img);
    const up = await cli(['disk', 'upload', 'cli-up', file, '--json'], undefined, undefined, undefined, true);
    expect(up.code, up.err).toBe(0);
    expect(up.err).toMatch(/upload cli-up\s+\[#{30}\] 100%/);
    const uploaded = JSON.parse(up.out);
    expectShape(DiskEnvelope, uploaded);
    expect(uploaded.disk).toMatchObject({ name: 'cli-up', format: 'raw', status: 'ready' });
    expect(fs.readFileSync(uploaded.disk.path).equals(img)).toBe(true);
    expect((await cli(['disk', 'upload', 'cli-up', file])).err).toMatch(/NAME_TAKEN/);
    expect((await cli(['disk', 'upload', 'x', path.join(home, 'missing.img')])).code).toBe(2);

    await json(['disk', 'create', 'cli-src', '--size', '1', '--wait']);
    const linked = await json(['disk', 'clone', 'cli-src', 'cli-linked', '--linked', '--wait']);
    expectShape(TaskEnvelope, linked);
    expect(linked.task).toMatchObject({ kind: 'disk.clone', status: 'succeeded' });
    const started = await json(['disk', 'clone', 'cli-src', 'cli-full']);
    expect(started.task.kind).toBe('disk.clone'); // without --wait: the task as it started
    expect((await json(['task', 'wait', started.task.id])).task.status).toBe('succeeded');
    const converted = await json(['disk', 'convert', 'cli-src', 'cli-raw', '--format', 'raw', '--wait']);
    expect(converted.task).toMatchObject({ kind: 'disk.convert', status: 'succeeded' });
    expect((await cli(['disk', 'convert', 'cli-src', 'cli-raw2'])).code).toBe(2); // --format is required
    const byName = new Map<string, any>((await json(['disk', 'ls'])).disks.map((d: any) => [d.name, d]));
    expect(byName.get('cli-linked')).toMatchObject({ format: 'qcow2', status: 'ready' });
    expect(byName.get('cli-full')).toMatchObject({ status: 'ready' });
    expect(byName.get('cli-raw')).toMatchObject({ format: 'raw', status: 'ready' });

    // import from a loopback HTTP server of the test
    const served = http.createServer((_req, res) => res.end(img));
    await new Promise<void>((r) => served.listen(0, '127.0.0.1', r));
    try {
      const src = `http://127.0.0.1:${(served.address() as AddressInfo).port}/image.img`;
      const sha = crypto.createHash('sha256').update(img).digest('hex');
      const imported = await json(['disk', 'import', 'cli-imp', src, '--sha256', sha, '--format', 'raw', '--wait']);
      expectShape(TaskEnvelope, imported);
      expect(imported.task).toMatchObject({ kind: 'disk.import', status: 'succeeded' });
      expect((await json(['disk', 'ls'])).disks.find((d: any) => d.name === 'cli-imp')).toMatchObject({ format: 'raw', status: 'ready' });
      const bad = await cli(['disk', 'import', 'cli-imp2', src, '--sha256', 'a'.repeat(64), '--wait']);
      expect(bad.code).toBe(1);
      expect(bad.err).toMatch(/TASK_FAILED/);
      expect((await json(['disk', 'ls'])).disks.map((d: any) => d.name)).not.toContain('cli-imp2');
      expect((await cli(['disk', 'import', 'x', src, '--format', 'vdi'])).code).toBe(2);
    } finally {
      served.close();
    }
    for (const d of ['cli-up', 'cli-linked', 'cli-full', 'cli-raw', 'cli-imp', 'cli-src']) await json(['disk', 'rm', d]);
  });

  it('vm clone --linked --wait; vm autostart shows, sets --on --order --delay, keeps what is not given, --off', async () => {
    await json(['vm', 'create', 'clone-src', '--cpus', '1', '--memory', '64']);
    await json(['disk', 'create', 'clone-src-disk', '--size', '1', '--wait']);
    await json(['disk', 'attach', 'clone-src', 'clone-src-disk']);
    const cloned = await json(['vm', 'clone', 'clone-src', 'clone-new', '--linked', '--wait']);
    expectShape(TaskEnvelope, cloned);
    expect(cloned.task).toMatchObject({ kind: 'vm.clone', status: 'succeeded' });
    const copy = (await json(['vm', 'show', 'clone-new'])).vm;
    expect(copy.disks).toHaveLength(1);
    expect(copy.cpus).toBe(1);

    const shown = await json(['vm', 'autostart', 'clone-new']);
    expectShape(VmEnvelope, shown);
    expect(shown.vm.autostart).toEqual({ enabled: false, order: 0, delayS: 0 });
    const on = await json(['vm', 'autostart', 'clone-new', '--on', '--order', '5', '--delay', '30']);
    expectShape(VmEnvelope, on);
    expect(on.vm.autostart).toEqual({ enabled: true, order: 5, delayS: 30 });
    expect((await json(['vm', 'autostart', 'clone-new', '--order', '2'])).vm.autostart).toEqual({ enabled: true, order: 2, delayS: 30 });
    expect((await json(['vm', 'show', 'clone-new'])).vm.autostart).toEqual({ enabled: true, order: 2, delayS: 30 });
    const human = await cli(['vm', 'autostart', 'clone-new', '--off']);
    expect(human).toMatchObject({ code: 0, out: 'clone-new: autostart off, order 2, delay 30 s\n' });
    expect((await cli(['vm', 'autostart', 'clone-new', '--on', '--off'])).code).toBe(2);
    expect((await cli(['vm', 'autostart', 'clone-new', '--delay', 'soon'])).code).toBe(2);
    const tooLong = await cli(['vm', 'autostart', 'clone-new', '--delay', '99999']);
    expect(tooLong.code).toBe(1);
    expect(tooLong.err).toMatch(/VALIDATION/);
    expect((await json(['vm', 'show', 'clone-new'])).vm.autostart).toEqual({ enabled: false, order: 2, delayS: 30 });
    expect((await cli(['vm', 'autostart', 'ghost', '--on'])).err).toMatch(/VM_NOT_FOUND/);
  });

  it('backup target ls, add, rm; backup schedule create, ls, run --wait, rm; backup import of a copied backup', async () => {
    const dir = makeTempDir('qm-cli-target-');
    try {
      const added = await json(['backup', 'target', 'add', 'cli-target', dir]);
      expectShape(BackupTargetEnvelope, added);
      expect(added.target).toMatchObject({ name: 'cli-target', default: false, backups: 0 });
      const targets = await json(['backup', 'target', 'ls']);
      expectShape(BackupTargetListEnvelope, targets);
      expect(targets.targets.map((t: any) => t.name).sort()).toEqual(['cli-target', 'default']);
      expect((await cli(['backup', 'target', 'add', 'rel', 'no/such/dir'])).code).toBe(1);

      const vm = (await json(['vm', 'create', 'sched-vm', '--cpus', '1', '--memory', '64'])).vm;
      await json(['disk', 'create', 'sched-disk', '--size', '1', '--wait']);
      await json(['disk', 'attach', 'sched-vm', 'sched-disk']);
      expect((await cli(['backup', 'schedule', 'create', 'nightly', '--every', 'daily', '--keep-last', '3'])).code).toBe(2); // neither --all nor --vm
      const noRule = await cli(['backup', 'schedule', 'create', 'nightly', '--every', 'daily', '--vm', 'sched-vm']);
      expect(noRule.code).toBe(1);
      expect(noRule.err).toMatch(/retention needs at least one rule/);
      const made = await json(['backup', 'schedule', 'create', 'nightly', '--every', 'daily', '--at', '03:00', '--vm', 'sched-vm', '--target', 'cli-target', '--keep-last', '3', '--keep-weekly', '2']);
      expectShape(BackupScheduleEnvelope, made);
      expect(made.schedule).toMatchObject({ name: 'nightly', vms: [vm.id], target: 'cli-target', at: '03:00', retention: { keepLast: 3, keepWeekly: 2 }, enabled: true });
      const listed = await json(['backup', 'schedule', 'ls']);
      expectShape(BackupScheduleListEnvelope, listed);
      expect(listed.schedules.map((x: any) => x.name)).toEqual(['nightly']);
      expect((await cli(['backup', 'target', 'rm', 'cli-target'])).err).toMatch(/TARGET_IN_USE/);
      const ran = await json(['backup', 'schedule', 'run', 'nightly', '--wait']);
      expectShape(TaskEnvelope, ran);
      expect(ran.task.status).toBe('succeeded');
      const backups = (await json(['backup', 'ls', '--vm', 'sched-vm'])).backups;
      expect(backups.map((b: any) => b.target)).toEqual(['cli-target']);
      expectShape(MessageBody, await json(['backup', 'schedule', 'rm', made.schedule.id]));
      expect((await json(['backup', 'schedule', 'ls'])).schedules).toEqual([]);

      // A copy of that backup's directory under a new id (as if brought from another host) is imported.
      const fresh = crypto.randomUUID();
      const from = path.join(dir, vm.id, backups[0].id);
      const to = path.join(dir, vm.id, fresh);
      fs.cpSync(from, to, { recursive: true });
      const manifest = JSON.parse(fs.readFileSync(path.join(to, 'manifest.json'), 'utf8'));
      manifest.id = fresh;
      fs.writeFileSync(path.join(to, 'manifest.json'), JSON.stringify(manifest));
      const imported = await json(['backup', 'import', to, '--wait']);
      expectShape(TaskEnvelope, imported);
      expect(imported.task).toMatchObject({ kind: 'backup.import', status: 'succeeded' });
      expect((await json(['backup', 'ls', '--vm', 'sched-vm'])).backups.map((b: any) => b.id).sort()).toEqual([backups[0].id, fresh].sort());
      const outside = await cli(['backup', 'import', '/etc']);
      expect(outside.code).toBe(1);
      expect(outside.err).toMatch(/PATH_NOT_ALLOWED/);

      for (const b of [backups[0].id, fresh]) await json(['backup', 'rm', b, '--wait']);
      expectShape(MessageBody, await json(['backup', 'target', 'rm', 'cli-target']));
      expect((await json(['backup', 'target', 'ls'])).targets.map((t: any) => t.name)).toEqual(['default']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it('npm install -g from the checkout works offline: the installed qemu-manager runs from anywhere', async () => {
    const prefix = makeTempDir('qm-cli-global-');
    try {
      // No registry is reachable and the cache is empty: a network fetch would fail the install.
      const env = { ...process.env, npm_config_registry: 'http://127.0.0.1:9/', npm_config_cache: path.join(prefix, 'cache'), npm_config_update_notifier: 'false' };
      const npm = spawnSync('npm', ['install', '-g', '--prefix', prefix, repoRoot, '--offline', '--no-audit', '--no-fund'], { cwd: prefix, env, encoding: 'utf8' });
      expect(npm.status, npm.stderr).toBe(0);
      const bin = path.join(prefix, 'bin', 'qemu-manager');
      expect(fs.existsSync(bin)).toBe(true);
      const help = spawnSync(bin, ['--help'], { cwd: prefix, env: { ...process.env, HOME: home }, encoding: 'utf8' });
      expect(help.status, help.stderr).toBe(0);
      expect(help.stdout).toMatch(/^Usage: qemu-manager/);
      // and it talks to the server (a process: not spawnSync, the server runs in this process)
      const listed = await new Promise<{ status: number | null; stdout: string }>((resolve, reject) => {
        const child = spawn(bin, ['vm', 'ls', '--json'], { cwd: prefix, env: { ...process.env, HOME: home, QM_URL: url, QM_TOKEN: token }, stdio: ['ignore', 'pipe', 'inherit'] });
        let stdout = '';
        child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
        child.on('error', reject);
        child.on('close', (status) => resolve({ status, stdout }));
      });
      expect(listed.status).toBe(0);
      expectShape(VmListEnvelope, JSON.parse(listed.stdout));
    } finally {
      fs.rmSync(prefix, { recursive: true, force: true });
    }
  }, 60_000);

  it('issue 12: vm create --os windows, vm hardware, image upload/ls/catalogue/pull/rm, vm create --image --wait, vm template, vm create --template --wait, vm cloud-init', async () => {
    const win = (await json(['vm', 'create', 'cli-win', '--cpus', '1', '--memory', '64', '--os', 'windows'])).vm;
    expectShape(VmEnvelope, { vm: win });
    expect(win).toMatchObject({ osType: 'windows', firmware: 'uefi', secureBoot: true, tpm: true, diskBus: 'sata', nicModel: 'e1000e' });
    const changed = await json(['vm', 'hardware', 'cli-win', '--no-tpm', '--boot', 'cdrom,disk', '--nic-model', 'virtio']);
    expectShape(VmEnvelope, changed);
    expect(changed.vm).toMatchObject({ tpm: false, secureBoot: true, bootOrder: ['cdrom', 'disk'], nicModel: 'virtio' });
    expect((await cli(['vm', 'hardware', 'cli-win'])).out).toMatch(/^cli-win: UEFI · Secure Boot · q35 · sata disks · virtio NIC · boot cdrom,disk/);
    expect((await cli(['vm', 'hardware', 'cli-win', '--boot', 'disk,disk'])).code).toBe(2);
    const sbOnPc = await cli(['vm', 'hardware', 'cli-win', '--machine', 'pc']);
    expect(sbOnPc.code).toBe(1);
    expect(sbOnPc.err).toMatch(/Secure Boot/);

    // A qcow2 header of 1 GiB: what the server's header checks read (the in-process image tool is a fake:
    // its copy keeps the file's bytes, so the stored image's size is not 1 GiB here).
    const file = path.join(home, 'cli-img.qcow2');
    const img = Buffer.alloc(64 * 1024);
    img.writeUInt32BE(0x514649fb, 0);
    img.writeUInt32BE(3, 4);
    img.writeUInt32BE(16, 20);
    img.writeBigUInt64BE(BigInt(1024 ** 3), 24);
    img.writeUInt32BE(104, 100);
    fs.writeFileSync(file, img);
    const up = await json(['image', 'upload', 'cli-img', file]);
    expectShape(ImageEnvelope, up);
    expect(up.image).toMatchObject({ name: 'cli-img', format: 'qcow2', source: 'upload' });
    expect(up.image.virtualSize).toBeGreaterThan(0);
    const listed = await json(['image', 'ls']);
    expectShape(ImageListEnvelope, listed);
    expect(listed.images.map((i: any) => i.name)).toEqual(['cli-img']);
    expectShape(ImageCatalogueEnvelope, await json(['image', 'catalogue']));
    const notHttp = await cli(['image', 'pull', 'cli-ftp', 'ftp://127.0.0.1/x.qcow2']);
    expect(notHttp.code).toBe(1);
    expect(notHttp.err).toMatch(/VALIDATION/);
    expect((await cli(['image', 'pull', 'not-in-catalogue'])).code).toBe(2);

    const made = await json(['vm', 'create', 'cli-from-img', '--cpus', '1', '--memory', '64', '--image', 'cli-img', '--disk-size', '2', '--os', 'linux', '--wait']);
    expect(made.task).toMatchObject({ kind: 'vm.create', status: 'succeeded' });
    expect(made.vm).toMatchObject({ name: 'cli-from-img', osType: 'linux' });
    expect(made.vm.disks).toHaveLength(1);
    const inUse = await cli(['image', 'rm', 'cli-img']);
    expect(inUse.code).toBe(1);
    expect(inUse.err).toMatch(/IMAGE_IN_USE/);
    expect((await cli(['vm', 'create', 'x', '--cpus', '1', '--memory', '64', '--disk-size', '2'])).code).toBe(2);

    const tpl = await json(['vm', 'template', 'cli-from-img']);
    expectShape(VmEnvelope, tpl);
    expect(tpl.vm.template).toBe(true);
    const startTpl = await cli(['vm', 'start', 'cli-from-img']);
    expect(startTpl.code).toBe(1);
    expect(startTpl.err).toMatch(/VM_IS_TEMPLATE/);
    const fromTpl = await json(['vm', 'create', 'cli-from-tpl', '--template', 'cli-from-img', '--wait']);
    expect(fromTpl.task).toMatchObject({ kind: 'vm.create', status: 'succeeded' });
    expect(fromTpl.vm).toMatchObject({ name: 'cli-from-tpl', template: false, cpus: 1, memory: 64 });
    expect(fromTpl.vm.mac).not.toBe(tpl.vm.mac);

    const keys = path.join(home, 'keys.pub');
    fs.writeFileSync(keys, '# mine\nssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOcliKey cli@test\n');
    const pw = path.join(home, 'pw');
    fs.writeFileSync(pw, 'secret-pw\n');
    const ci = await json(['vm', 'cloud-init', 'cli-from-tpl', '--hostname', 'cli-host', '--user', 'ops', '--password-file', pw, '--ssh-key', keys]);
    expectShape(CloudInitEnvelope, ci);
    expect(ci.cloudInit).toMatchObject({ hostname: 'cli-host', user: 'ops', password: '********', sshAuthorizedKeys: ['ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOcliKey cli@test'] });
    expect((await json(['vm', 'show', 'cli-from-tpl'])).vm.cloudInit).toBe(true);
    expect((await json(['vm', 'cloud-init', 'cli-from-tpl'])).cloudInit.hostname).toBe('cli-host');
    expectShape(MessageBody, await json(['vm', 'cloud-init', 'cli-from-tpl', '--clear']));
    expect((await json(['vm', 'show', 'cli-from-tpl'])).vm.cloudInit).toBe(false);
  });

  it('token create, ls, rm (by name); the new token works, the revoked one does not', async () => {
    const made = await json(['token', 'create', 'cli-made', '--scope', 'read']);
    expectShape(CreatedToken, made);
    const listed = await json(['token', 'ls']);
    expectShape(TokenListEnvelope, listed);
    expect(listed.tokens.map((t: any) => t.name)).toEqual(expect.arrayContaining(['cli-test', 'cli-made']));
    expect((await cli(['vm', 'ls'], { QM_URL: url, QM_TOKEN: made.token })).code).toBe(0);
    expect((await cli(['token', 'create', 'x', '--scope', 'root'])).code).toBe(2);
    expectShape(MessageBody, await json(['token', 'rm', 'cli-made']));
    expect((await cli(['vm', 'ls'], { QM_URL: url, QM_TOKEN: made.token })).code).toBe(1);
  });

  it('events follows the stream: one JSON line per event, each a ServerEvent', async () => {
    const ac = new AbortController();
    let seen = '';
    const following = cli(['events', '--json'], undefined, ac.signal, (out) => {
      seen = out;
      if (out.includes('"vm.created"') || out.includes('ev-vm')) ac.abort();
    });
    // The stream is open once the server counts the subscriber; then an event is made.
    for (let i = 0; i < 100 && !ac.signal.aborted; i++) {
      await new Promise((r) => setTimeout(r, 50));
      if (i === 4) await json(['vm', 'create', 'ev-vm', '--cpus', '1', '--memory', '64']);
    }
    ac.abort();
    const r = await following;
    expect(r.code, r.err).toBe(0);
    const lines = seen.trim().split('\n').filter(Boolean);
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expectShape(ServerEvent, JSON.parse(l));
    expect(lines.some((l) => l.includes('ev-vm'))).toBe(true);
  });

  it('the config file: refused when group/other can read it, used (url and token) when it is 0600', async () => {
    const dir = path.join(home, '.config', 'qemu-manager');
    fs.mkdirSync(dir, { recursive: true });
    const file = path.join(dir, 'config.json');
    fs.writeFileSync(file, JSON.stringify({ url, token }), { mode: 0o644 });
    fs.chmodSync(file, 0o644);
    const refused = await cli(['vm', 'ls'], {});
    expect(refused.code).toBe(2);
    expect(refused.err).toMatch(/refusing to read .*config\.json.*mode 644.*chmod 600/);
    fs.chmodSync(file, 0o600);
    const ok = await cli(['vm', 'ls', '--json'], {});
    expect(ok.code, ok.err).toBe(0);
    expectShape(VmListEnvelope, JSON.parse(ok.out));
    // Flags win over the file.
    expect((await cli(['vm', 'ls', '--token', 'qmt_bad'], {})).code).toBe(1);
    fs.rmSync(file);
  });

  it('completion: the bash script loads and completes nouns, verbs and flags; the zsh one is printed', async () => {
    const bash = await cli(['completion', 'bash']);
    expect(bash.code).toBe(0);
    const script = path.join(home, 'completion.bash');
    fs.writeFileSync(script, bash.out);
    const complete = (words: string[]) => {
      const r = spawnSync(
        'bash',
        ['-c', `source "$1" && COMP_WORDS=(${words.map((w) => `'${w}'`).join(' ')}) && COMP_CWORD=${words.length - 1} && _qemu_manager && echo "\${COMPREPLY[*]}"`, 'x', script],
        { encoding: 'utf8' },
      );
      expect(r.status, r.stderr).toBe(0);
      return r.stdout.trim().split(' ').sort();
    };
    expect(complete(['qemu-manager', 'v'])).toEqual(['vm']);
    expect(complete(['qemu-manager', 'vm', 'sh'])).toEqual(['show', 'shutdown']);
    expect(complete(['qemu-manager', 'disk', 'create', '--'])).toEqual(expect.arrayContaining(['--size', '--format', '--wait', '--json']));
    const loaded = spawnSync('bash', ['-c', 'source <(node "$1" completion bash) && complete -p qemu-manager', 'x', BIN], { encoding: 'utf8' });
    expect(loaded.stdout).toMatch(/complete -F _qemu_manager qemu-manager/);
    const zsh = await cli(['completion', 'zsh']);
    expect(zsh.out).toMatch(/^#compdef qemu-manager/);
    expect((await cli(['completion', 'fish'])).code).toBe(2);
  });
});
