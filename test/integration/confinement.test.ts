/**
 * QEMU confinement against other local users and against a compromised QEMU user: VNC only on a unix
 * socket only the server and that VM's user can enter (VNC_TCP=1 the documented exception), images
 * handed to QEMU as descriptors (never chowned, never reopened by path, a symlink swapped in while
 * starting reaches nothing), a run dir where the server never follows what the QEMU user planted
 * (also after a power cut, with another pool user), and pool users that are host-wide.
 */
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_MARKER } from '../guest/index.js';
import { TestServer, holdPort, killQemusOf, makeDataDir, serialLog, startGuestServer, vncBanner, waitFor } from './harness.js';

const root = process.getuid?.() === 0;
const CLAIMS = '/run/qemu-manager/users';

function ids(pid: number): { uid: number; gid: number } {
  const status = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
  return { uid: Number(status.match(/^Uid:\s+(\d+)/m)![1]), gid: Number(status.match(/^Gid:\s+(\d+)/m)![1]) };
}

/** Local TCP ports a process listens on (its socket inodes looked up in /proc/net/tcp{,6}). */
function listeningTcpPorts(pid: number): number[] {
  const inodes = new Set<string>();
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const m = fs.readlinkSync(`/proc/${pid}/fd/${fd}`).match(/^socket:\[(\d+)\]$/);
      if (m) inodes.add(m[1]);
    } catch {
      /* closed meanwhile */
    }
  }
  const ports: number[] = [];
  for (const table of ['tcp', 'tcp6']) {
    for (const line of fs.readFileSync(`/proc/${pid}/net/${table}`, 'utf8').split('\n').slice(1)) {
      const f = line.trim().split(/\s+/);
      if (f.length > 9 && f[3] === '0A' && inodes.has(f[9])) ports.push(Number.parseInt(f[1].split(':')[1], 16));
    }
  }
  return ports;
}

/** Files a process has open (targets of /proc/<pid>/fd). */
function openFiles(pid: number): string[] {
  const out: string[] = [];
  try {
    for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
      try {
        out.push(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      } catch {
        /* closed */
      }
    }
  } catch {
    /* gone */
  }
  return out;
}

/** Runs a short node script as another user; resolves with its exit code and output. */
function runAs(uid: number, gid: number, script: string): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, ['-e', script], { uid, gid, encoding: 'utf8', timeout: 10_000 });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

function digest(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

/** A root-only file outside every storage root, and a way to see it was not touched. */
function rootFile(dir: string, size: number): { file: string; check: () => void } {
  const file = path.join(dir, `secret-${crypto.randomUUID()}`);
  fs.writeFileSync(file, crypto.randomBytes(size), { mode: 0o600 });
  const before = { sum: digest(file), size };
  return {
    file,
    check: () => {
      const st = fs.lstatSync(file);
      expect(st.isFile()).toBe(true);
      expect(st.uid).toBe(0);
      expect(st.mode & 0o777).toBe(0o600);
      expect(st.size).toBe(before.size);
      expect(digest(file)).toBe(before.sum);
    },
  };
}

describe('QEMU confinement on a guest server', () => {
  let server: TestServer;
  let isoPath: string;
  let vmId: string;
  let secrets: string;

  beforeAll(async () => {
    ({ server, isoPath } = await startGuestServer());
    secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-secret-'));
    const vm = (await server.api('POST', '/vms', { name: 'confined', cpus: 1, memory: 256 })).body.vm;
    vmId = vm.id;
    expect((await server.api('POST', `/vms/${vmId}/iso/mount`, { isoPath })).status).toBe(200);
    expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
    await waitFor(() => serialLog(server.dataDir, vmId).includes(READY_MARKER), 90_000, 'guest READY');
  }, 120_000);

  afterAll(async () => {
    await server?.dispose();
    if (secrets) fs.rmSync(secrets, { recursive: true, force: true });
  });

  const vmNow = async () => (await server.api('GET', `/vms/${vmId}`)).body.vm;

  it('VNC listens on no TCP port, only on a socket in a directory of the server and that VM user', async () => {
    const vm = await vmNow();
    expect(vm.vnc_port).toBeGreaterThanOrEqual(5900);
    expect(listeningTcpPorts(vm.pid)).toEqual([]);
    expect(vm.lastCommand).toContain(`-vnc unix:${path.join(server.dataDir, 'run', vmId, 'qemu', 'vnc.sock')}`);
    // The console still works, through the proxy.
    expect(await vncBanner(server.url, vmId)).toMatch(/^RFB 003\.00\d/);
    if (!root) return;
    const qemu = ids(vm.pid);
    const qemuDir = fs.statSync(path.join(server.dataDir, 'run', vmId, 'qemu'));
    expect(qemuDir.uid).toBe(qemu.uid);
    expect(qemuDir.mode & 0o777).toBe(0o700);
    // Another local user can reach neither socket: the QEMU user's directory nor the server's link.
    const connect = (p: string) =>
      `const s=require('net').connect(${JSON.stringify(p)});s.on('connect',()=>{console.log('CONNECTED');process.exit(0)});s.on('error',e=>{console.log(e.code);process.exit(3)})`;
    for (const p of [path.join(server.dataDir, 'run', vmId, 'qemu', 'vnc.sock'), path.join(server.dataDir, 'run', vmId, 'vnc.sock')]) {
      const r = runAs(65534, 65534, connect(p));
      expect(r.out).not.toContain('CONNECTED');
      expect(r.out).toMatch(/EACCES|ENOENT/);
    }
    // The server's links to QEMU's sockets are 0600, whatever umask QEMU made them with.
    for (const name of ['qmp.sock', 'vnc.sock']) {
      const st = fs.lstatSync(path.join(server.dataDir, 'run', vmId, name));
      expect(st.isSocket()).toBe(true);
      expect(st.uid).toBe(qemu.uid);
      expect(st.mode & 0o777).toBe(0o600);
    }
  });

  it.runIf(root)('images stay root-owned 0600 while QEMU runs: QEMU holds them as descriptors it inherited', async () => {
    const d = (await server.api('POST', '/disks', { name: 'fd-disk', size: 1, format: 'qcow2' })).body.disk;
    const disk = await waitFor(async () => {
      const x = (await server.api('GET', `/disks/${d.id}`)).body.disk;
      return x.status === 'ready' && x;
    }, 10_000, 'disk ready');
    const vm = (await server.api('POST', '/vms', { name: 'fd-vm', cpus: 1, memory: 96 })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk.path })).status).toBe(200);
    const started = await server.api('POST', `/vms/${vm.id}/start`);
    expect(started.status).toBe(200);
    const st = fs.statSync(disk.path);
    expect(st.uid).toBe(0);
    expect(st.mode & 0o777).toBe(0o600);
    expect(ids(started.body.vm.pid).uid).not.toBe(0);
    expect(openFiles(started.body.vm.pid)).toContain(fs.realpathSync(disk.path));
    expect(started.body.command).toContain('/dev/fdset/');
    expect(started.body.command).not.toContain(disk.path);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect(fs.statSync(disk.path).uid).toBe(0);
  });

  it.runIf(root)('the QEMU user cannot write the server run dir, and the symlinks it plants in its own are never followed', async () => {
    const vm = await vmNow();
    const qemu = ids(vm.pid);
    const runDir = path.join(server.dataDir, 'run', vmId);
    const qemuDir = path.join(runDir, 'qemu');
    // Bigger than the 1 MiB at which qemu.log is started afresh: a followed link would be truncated.
    const target = rootFile(secrets, (1 << 20) + 4096);
    // In the server's run dir the QEMU user can create nothing.
    const denied = runAs(qemu.uid, qemu.gid, `try{require('fs').symlinkSync(${JSON.stringify(target.file)},${JSON.stringify(path.join(runDir, 'x'))});console.log('PLANTED')}catch(e){console.log(e.code)}`);
    expect(denied.out.trim()).toBe('EACCES');
    // In its own directory it replaces everything the server might touch.
    const names = ['qemu.log', 'serial.log', 'qemu.pid', 'owners.json', 'qmp.sock', 'vnc.sock'];
    const plant = runAs(
      qemu.uid,
      qemu.gid,
      `const fs=require('fs'),p=require('path');for(const n of ${JSON.stringify(names)}){const f=p.join(${JSON.stringify(qemuDir)},n);fs.rmSync(f,{force:true});fs.symlinkSync(${JSON.stringify(target.file)},f)}console.log('OK')`,
    );
    expect(plant.out.trim()).toBe('OK');
    // The console and QMP still work: the server talks to its own links, made before the guest ran.
    expect(await vncBanner(server.url, vmId)).toMatch(/^RFB/);
    expect((await server.api('POST', `/vms/${vmId}/pause`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${vmId}/resume`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    expect(fs.existsSync(qemuDir)).toBe(false);
    const again = await server.api('POST', `/vms/${vmId}/start`);
    expect(again.status).toBe(200);
    target.check();
    expect(fs.lstatSync(path.join(qemuDir, 'qemu.pid')).isFile()).toBe(true);
  });

  it.runIf(root)('after a power cut, symlinks planted meanwhile are not followed and the VM boots as another pool user', async () => {
    const before = await vmNow();
    expect(before.status).toBe('running');
    const oldUser = ids(before.pid);
    // serial.log holds the current run (QEMU starts it afresh).
    const ready = () => serialLog(server.dataDir, vmId).includes(READY_MARKER);
    await waitFor(ready, 90_000, 'guest READY after the restart');
    // Power cut: the server and every QEMU of this data dir die at once.
    await server.kill('SIGKILL');
    killQemusOf(server.dataDir);
    await waitFor(() => !fs.existsSync(`/proc/${before.pid}`) || fs.readFileSync(`/proc/${before.pid}/stat`, 'utf8').includes(') Z'), 5000, 'QEMU gone');
    // Meanwhile the old QEMU user plants links wherever it can still write.
    const target = rootFile(secrets, (1 << 20) + 4096);
    const qemuDir = path.join(server.dataDir, 'run', vmId, 'qemu');
    const plant = runAs(
      oldUser.uid,
      oldUser.gid,
      `const fs=require('fs'),p=require('path');for(const n of ['qemu.log','serial.log','qemu.pid','qmp.sock','vnc.sock']){const f=p.join(${JSON.stringify(qemuDir)},n);fs.rmSync(f,{force:true});fs.symlinkSync(${JSON.stringify(target.file)},f)}console.log('OK')`,
    );
    expect(plant.out.trim()).toBe('OK');
    await server.start();
    expect((await vmNow()).status).toBe('stopped');
    // The old user is busy now (a process of its own runs), so this start must take another one.
    const busy = spawn('sleep', ['600'], { uid: oldUser.uid, gid: oldUser.gid, stdio: 'ignore' });
    try {
      const r = await server.api('POST', `/vms/${vmId}/start`);
      expect(r.status).toBe(200);
      expect(ids(r.body.vm.pid).uid).not.toBe(oldUser.uid);
      await waitFor(ready, 90_000, 'guest READY as another pool user');
    } finally {
      busy.kill('SIGKILL');
    }
    target.check();
  }, 240_000);

  it.runIf(root)('a run dir an older version left (serial.log of a pool user, a symlinked qemu.log, an old socket file) does not stop a start', async () => {
    const before = await vmNow();
    expect(before.status).toBe('running');
    const poolUser = ids(before.pid);
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);
    const runDir = path.join(server.dataDir, 'run', vmId);
    const target = rootFile(secrets, (1 << 20) + 4096);
    // The older layout: run/<id>/ left root-owned 0700 after stop, with what QEMU created in it.
    fs.rmSync(runDir, { recursive: true, force: true });
    fs.mkdirSync(runDir, { mode: 0o700 });
    fs.writeFileSync(path.join(runDir, 'serial.log'), 'old run\n');
    fs.chownSync(path.join(runDir, 'serial.log'), poolUser.uid, poolUser.gid);
    fs.symlinkSync(target.file, path.join(runDir, 'qemu.log'));
    fs.writeFileSync(path.join(runDir, 'qmp.sock'), '');
    fs.writeFileSync(path.join(runDir, 'qemu.pid'), `${before.pid}\n`);
    fs.chownSync(path.join(runDir, 'qemu.pid'), poolUser.uid, poolUser.gid);
    const r = await server.api('POST', `/vms/${vmId}/start`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    await waitFor(() => serialLog(server.dataDir, vmId).includes(READY_MARKER), 90_000, 'guest READY after the old layout');
    target.check();
    for (const name of ['serial.log', 'qemu.log']) {
      const st = fs.lstatSync(path.join(runDir, name));
      expect(st.isFile()).toBe(true);
      expect(st.uid).toBe(0);
    }
    expect(fs.existsSync(path.join(runDir, 'qemu.pid'))).toBe(false);
    expect(fs.lstatSync(path.join(runDir, 'qmp.sock')).isSocket()).toBe(true);
  }, 120_000);

  it.runIf(root)('a 0600 medium lent to one running VM is refused live to another (409), and always goes back to its owner', async () => {
    const iso = path.join(server.dataDir, 'isos', `private-${crypto.randomUUID()}.iso`);
    fs.copyFileSync(isoPath, iso);
    fs.chmodSync(iso, 0o600);
    const make = async (name: string) => {
      const v = (await server.api('POST', '/vms', { name, cpus: 1, memory: 64 })).body.vm;
      const r = await server.api('POST', `/vms/${v.id}/start`);
      expect(r.status).toBe(200);
      return { id: v.id as string, uid: ids(r.body.vm.pid).uid };
    };
    const a = await make('lend-a');
    const b = await make('lend-b');
    try {
      expect((await server.api('POST', `/vms/${a.id}/iso/mount`, { isoPath: iso })).status).toBe(200);
      expect(fs.statSync(iso).uid).toBe(a.uid);
      const refused = await server.api('POST', `/vms/${b.id}/iso/mount`, { isoPath: iso });
      expect(refused.status).toBe(409);
      expect(refused.body.code).toBe('ISO_IN_USE');
      expect(refused.body.error).toMatch(/eject it there first/);
      expect((await server.api('GET', `/vms/${b.id}`)).body.vm.iso).toBeNull();
      expect(fs.statSync(iso).uid).toBe(a.uid);
      // Once A is stopped the medium is root's again, and B may borrow it.
      expect((await server.api('POST', `/vms/${a.id}/stop`)).status).toBe(200);
      expect(fs.statSync(iso).uid).toBe(0);
      expect((await server.api('POST', `/vms/${b.id}/iso/mount`, { isoPath: iso })).status).toBe(200);
      expect(fs.statSync(iso).uid).toBe(b.uid);
      expect((await server.api('POST', `/vms/${b.id}/stop`)).status).toBe(200);
      const st = fs.statSync(iso);
      expect(st.uid).toBe(0);
      expect(st.mode & 0o777).toBe(0o600);
    } finally {
      for (const v of [a, b]) await server.api('POST', `/vms/${v.id}/stop`);
    }
  }, 60_000);
});

describe.runIf(root)('a VM adopted after an upgrade from the version that chowned images', () => {
  let server: TestServer;
  let extra: string;

  beforeAll(async () => {
    extra = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-root-'));
    server = await new TestServer(makeDataDir(), { STORAGE_ROOTS: extra }).start();
  });
  afterAll(async () => {
    await server?.dispose();
    if (extra) fs.rmSync(extra, { recursive: true, force: true });
  });

  it('gives its images back when it exits, only those its user still owns, and never reads a record its user could write', async () => {
    const disk = path.join(extra, 'legacy.img');
    execFileSync('qemu-img', ['create', '-f', 'raw', disk, '8M'], { stdio: 'ignore' });
    fs.chmodSync(disk, 0o600);
    const vm = (await server.api('POST', '/vms', { name: 'legacy', cpus: 1, memory: 64 })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk })).status).toBe(200);
    const r = await server.api('POST', `/vms/${vm.id}/start`);
    expect(r.status).toBe(200);
    const pid: number = r.body.vm.pid;
    const qemu = ids(pid);
    // The server goes away (an upgrade); QEMU keeps running.
    await server.kill('SIGKILL');
    // What the older version left for such a VM: the image chowned to the QEMU user and recorded next
    // to the run dir (with a file its user does not own), and run/<id>/ given to the QEMU user.
    const runDir = path.join(server.dataDir, 'run', vm.id);
    const other = path.join(extra, 'other.img');
    fs.writeFileSync(other, 'x', { mode: 0o600 });
    fs.chownSync(other, 4243, 4243);
    fs.chownSync(disk, qemu.uid, qemu.gid);
    fs.writeFileSync(path.join(server.dataDir, 'run', `${vm.id}.owners.json`), JSON.stringify({ [disk]: [0, 0], [other]: [0, 0] }), { mode: 0o600 });
    fs.chownSync(runDir, qemu.uid, qemu.gid);
    // A compromised QEMU writes a record of "lent media" in the directory it owns.
    const victim = path.join(extra, 'victim.img');
    fs.writeFileSync(victim, 'secret', { mode: 0o600 });
    const vst = fs.statSync(victim);
    const forged = JSON.stringify([{ path: victim, dev: vst.dev, ino: vst.ino, uid: qemu.uid, gid: qemu.gid }]);
    const w = runAs(qemu.uid, qemu.gid, `require('fs').writeFileSync(${JSON.stringify(path.join(runDir, 'owners.json'))},${JSON.stringify(forged)});console.log('OK')`);
    expect(w.out.trim()).toBe('OK');
    await server.start();
    const adopted = (await server.api('GET', `/vms/${vm.id}`)).body.vm;
    expect(adopted.status).toBe('running');
    expect(adopted.pid).toBe(pid);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    expect(fs.existsSync(`/proc/${pid}`) && !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z')).toBe(false);
    expect(fs.statSync(disk).uid).toBe(0);
    expect(fs.statSync(other).uid).toBe(4243);
    expect(fs.statSync(victim).uid).toBe(0);
    expect(fs.existsSync(path.join(server.dataDir, 'run', `${vm.id}.owners.json`))).toBe(false);
    const dir = fs.lstatSync(runDir);
    expect(dir.isDirectory()).toBe(true);
    expect(dir.uid).toBe(0);
    // And it starts again.
    expect((await server.api('POST', `/vms/${vm.id}/start`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
  }, 60_000);

  it('found dead at server start, it gives back only the images its user still owns', async () => {
    const disk = path.join(extra, 'dead.img');
    execFileSync('qemu-img', ['create', '-f', 'raw', disk, '8M'], { stdio: 'ignore' });
    fs.chmodSync(disk, 0o600);
    const vm = (await server.api('POST', '/vms', { name: 'dead', cpus: 1, memory: 64 })).body.vm;
    expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: disk })).status).toBe(200);
    const r = await server.api('POST', `/vms/${vm.id}/start`);
    expect(r.status).toBe(200);
    const qemu = ids(r.body.vm.pid);
    // A power cut under the older version: server and QEMU gone, the image and run dir still the QEMU user's.
    await server.kill('SIGKILL');
    killQemusOf(server.dataDir);
    await waitFor(() => !fs.existsSync(`/proc/${r.body.vm.pid}`) || fs.readFileSync(`/proc/${r.body.vm.pid}/stat`, 'utf8').includes(') Z'), 5000, 'QEMU gone');
    const other = path.join(extra, 'dead-other.img');
    fs.writeFileSync(other, 'x', { mode: 0o600 });
    fs.chownSync(other, 4244, 4244);
    fs.chownSync(disk, qemu.uid, qemu.gid);
    fs.writeFileSync(path.join(server.dataDir, 'run', `${vm.id}.owners.json`), JSON.stringify({ [disk]: [0, 0], [other]: [0, 0] }), { mode: 0o600 });
    fs.chownSync(path.join(server.dataDir, 'run', vm.id), qemu.uid, qemu.gid);
    await server.start();
    expect((await server.api('GET', `/vms/${vm.id}`)).body.vm.status).toBe('stopped');
    expect(fs.statSync(disk).uid).toBe(0);
    expect(fs.statSync(other).uid).toBe(4244);
    expect(fs.existsSync(path.join(server.dataDir, 'run', `${vm.id}.owners.json`))).toBe(false);
  }, 60_000);
});

describe.runIf(root)('a symlink swapped in while a VM starts', () => {
  let server: TestServer;
  let extra: string;
  let secrets: string;

  beforeAll(async () => {
    extra = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-root-'));
    secrets = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-secret-'));
    server = await new TestServer(makeDataDir(), { STORAGE_ROOTS: extra }).start();
  });
  afterAll(async () => {
    await server?.dispose();
    for (const d of [extra, secrets]) if (d) fs.rmSync(d, { recursive: true, force: true });
  });

  it('reaches neither chown nor open of the file it points to (swapped in a loop for seconds)', async () => {
    const target = rootFile(secrets, 64 * 1024);
    const real = path.join(extra, 'real.img');
    execFileSync('qemu-img', ['create', '-f', 'raw', real, '8M'], { stdio: 'ignore' });
    fs.chmodSync(real, 0o600);
    const name = path.join(extra, 'disk.img');
    fs.linkSync(real, name);
    const vm = (await server.api('POST', '/vms', { name: 'swap', cpus: 1, memory: 64 })).body.vm;
    const att = await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath: name });
    expect(att.status).toBe(200);
    // Someone who can write the storage root flips disk.img between the image and a symlink to a root file.
    const swapper = spawn(
      process.execPath,
      [
        '-e',
        `const fs=require('fs');const [real,name,target]=process.argv.slice(1);let i=0;
         for(;;){const t=name+'.t'+(i++%2);try{fs.rmSync(t,{force:true});if(i%2)fs.symlinkSync(target,t);else fs.linkSync(real,t);fs.renameSync(t,name)}catch{}}`,
        real,
        name,
        target.file,
      ],
      { stdio: 'ignore' },
    );
    let started = 0;
    let refused = 0;
    try {
      const until = Date.now() + 8000;
      while (Date.now() < until) {
        const r = await server.api('POST', `/vms/${vm.id}/start`);
        if (r.status === 200) {
          started++;
          expect(openFiles(r.body.vm.pid)).not.toContain(target.file);
          expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
        } else {
          refused++;
          expect(r.status).toBeGreaterThanOrEqual(400);
          expect(r.status).toBeLessThan(500);
          expect(r.body.code).toBeTypeOf('string');
        }
        target.check();
      }
    } finally {
      swapper.kill('SIGKILL');
    }
    expect(started + refused).toBeGreaterThan(5);
    target.check();
  }, 60_000);
});

describe.runIf(root)('two servers on one host', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers) await s.dispose();
  });

  it('never give the same pool user to two QEMUs, even when both start at the same time', async () => {
    servers.push(await new TestServer(makeDataDir()).start(), await new TestServer(makeDataDir()).start());
    const vms = await Promise.all(servers.map(async (s) => (await s.api('POST', '/vms', { name: 'twin', cpus: 1, memory: 64 })).body.vm));
    const started = await Promise.all(servers.map((s, i) => s.api('POST', `/vms/${vms[i].id}/start`)));
    for (const r of started) expect(r.status).toBe(200);
    const uids = started.map((r) => ids(r.body.vm.pid).uid);
    expect(uids[0]).not.toBe(uids[1]);
    // Each user is claimed host-wide by the server that runs it.
    for (const [i, uid] of uids.entries()) {
      const name = execFileSync('id', ['-nu', String(uid)], { encoding: 'utf8' }).trim();
      const claim = JSON.parse(fs.readFileSync(path.join(CLAIMS, name), 'utf8'));
      expect(claim).toMatchObject({ pid: servers[i].proc!.pid, dataDir: servers[i].dataDir });
    }
    for (const [i, s] of servers.entries()) expect((await s.api('POST', `/vms/${vms[i].id}/stop`)).status).toBe(200);
  });
});

describe('VNC of an adopted QEMU, across a restart that changes VNC_TCP', () => {
  const servers: TestServer[] = [];
  afterAll(async () => {
    for (const s of servers.reverse()) await s.dispose();
  });

  it('the console goes where that QEMU serves VNC, not where the new setting would put it', async () => {
    const dataDir = makeDataDir();
    const tcp = await new TestServer(dataDir, { VNC_TCP: '1' }).start();
    servers.push(tcp);
    const a = (await tcp.api('POST', '/vms', { name: 'was-tcp', cpus: 1, memory: 64 })).body.vm;
    const ra = await tcp.api('POST', `/vms/${a.id}/start`);
    expect(ra.status).toBe(200);
    expect(ra.body.command).toContain('-vnc 127.0.0.1:');
    await tcp.kill('SIGKILL');
    const unix = await new TestServer(dataDir).start();
    servers.push(unix);
    expect((await unix.api('GET', `/vms/${a.id}`)).body.vm.status).toBe('running');
    expect(await vncBanner(unix.url, a.id)).toMatch(/^RFB/);
    const b = (await unix.api('POST', '/vms', { name: 'was-unix', cpus: 1, memory: 64 })).body.vm;
    const rb = await unix.api('POST', `/vms/${b.id}/start`);
    expect(rb.status).toBe(200);
    expect(rb.body.command).toContain('-vnc unix:');
    await unix.kill('SIGKILL');
    const tcp2 = await new TestServer(dataDir, { VNC_TCP: '1' }).start();
    servers.push(tcp2);
    for (const id of [a.id, b.id]) {
      expect((await tcp2.api('GET', `/vms/${id}`)).body.vm.status).toBe('running');
      expect(await vncBanner(tcp2.url, id)).toMatch(/^RFB/);
    }
  }, 60_000);
});

describe('VNC_TCP=1', () => {
  let server: TestServer;
  beforeAll(async () => {
    server = await new TestServer(makeDataDir(), { VNC_TCP: '1' }).start();
  });
  afterAll(() => server?.dispose());

  it('keeps a TCP listener on 127.0.0.1 for native clients, moved when another program holds the port', async () => {
    const vm = (await server.api('POST', '/vms', { name: 'tcp', cpus: 1, memory: 64 })).body.vm;
    const blocker = await holdPort(vm.vnc_port);
    try {
      const r = await server.api('POST', `/vms/${vm.id}/start`);
      expect(r.status).toBe(200);
      const port = r.body.vm.vnc_port;
      expect(port).not.toBe(vm.vnc_port);
      expect(r.body.command).toContain(`-vnc 127.0.0.1:${port - 5900}`);
      expect(listeningTcpPorts(r.body.vm.pid)).toContain(port);
      const banner = await new Promise<string>((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1');
        s.once('data', (d) => {
          resolve(d.toString('latin1'));
          s.destroy();
        });
        s.once('error', reject);
      });
      expect(banner).toMatch(/^RFB/);
      expect(await vncBanner(server.url, vm.id)).toMatch(/^RFB/);
      expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
    } finally {
      if (blocker.listening) await new Promise((r) => blocker.close(r));
    }
  });
});
