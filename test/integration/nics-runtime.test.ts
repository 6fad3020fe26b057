/**
 * Networks (issue 11), the QEMU adapter alone: the real QemuRuntime (packages/server/dist) starts
 * the real test guest under TCG with a user-mode NIC and forwards from VmLaunch.nics, then adds
 * and removes forwards live (HMP hostfwd over QMP) and hot-plugs a second user NIC (netdev_add,
 * device_add into its PCIe root port on q35) and unplugs it again. Every connection goes to
 * 127.0.0.1 (QEMU's user-mode NAT lives in the QEMU process). One booted guest for the file.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestGuestIso, READY_MARKER } from '../guest/index.js';
import { freePort, holdPort, repoRoot, waitFor } from './harness.js';
import type { QemuRuntime as QemuRuntimeClass } from '../../packages/server/dist/qemu/runtime.js';
import type { LaunchNic, UserForward } from '../../packages/server/dist/runtime/port.js';
import { echo, marker, refused } from './guest-net.js';

const dist = (p: string) => path.join(repoRoot, 'packages/server/dist', p);
const vmId = '7d1e3a52-9c4b-4f0e-8a61-2b3c4d5e6f70';
const MAC0 = '52:54:00:11:22:01';
const MAC1 = '52:54:00:11:22:02';

let runtime: QemuRuntimeClass;
let makeRuntime: () => QemuRuntimeClass;
let work: string;
let isoFd: number | null = null;
let pid: number | null = null;
let httpPort: number;
let echoPort: number;
const logged: string[] = [];
const log = {
  info: () => undefined,
  warn: (o: object, m?: string) => logged.push(`${m ?? ''} ${JSON.stringify(o)}`),
  error: (o: object, m?: string) => logged.push(`${m ?? ''} ${JSON.stringify(o)}`),
};

const serial = () => runtime.serialLog(vmId, 1 << 20).toString('latin1');
const fwd = (hostPort: number, guestPort: number): UserForward => ({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort, guestPort });

beforeAll(async () => {
  const iso = await ensureTestGuestIso();
  const { QemuRuntime } = (await import(dist('qemu/runtime.js'))) as typeof import('../../packages/server/dist/qemu/runtime.js');
  const { IdentityPool } = (await import(dist('qemu/identity.js'))) as typeof import('../../packages/server/dist/qemu/identity.js');
  const { StorageRoots } = (await import(dist('lib/storage.js'))) as typeof import('../../packages/server/dist/lib/storage.js');
  work = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-nics-'));
  fs.mkdirSync(path.join(work, 'run'));
  makeRuntime = () => new QemuRuntime({
    qemuBinary: 'qemu-system-x86_64',
    runRoot: path.join(work, 'run'),
    // QEMU as the test's own user: this file is about NICs, not identities (the server's tests cover those)
    pool: IdentityPool.fromSetting('', log),
    storage: new StorageRoots([work]),
    isolation: { confine: async () => undefined, confineAdopted: async () => undefined },
    vncTcp: false,
    log,
    stateRoot: path.join(work, 'vms'),
    unplugTimeoutMs: 15_000,
  });
  runtime = makeRuntime();
  httpPort = await freePort();
  echoPort = await freePort();
  isoFd = fs.openSync(iso, 'r');
  const nics: LaunchNic[] = [{ slot: 0, model: 'virtio', mac: MAC0, kind: 'user', forwards: [fwd(httpPort, 80), fwd(echoPort, 7)] }];
  const launched = await runtime.start({
    vmId,
    name: 'nics-runtime',
    cpus: 1,
    memoryMiB: 256,
    mac: MAC0,
    vncDisplay: 0,
    accel: 'tcg',
    disks: [],
    iso: { fd: isoFd },
    hardware: { firmware: 'bios', secureBoot: false, tpm: false, machine: 'q35', bootOrder: ['cdrom'] },
    nics,
  });
  pid = launched.pid;
  fs.closeSync(isoFd);
  isoFd = null;
  expect(launched.command).toContain(`user,id=net0,hostfwd=tcp:127.0.0.1:${httpPort}-:80,hostfwd=tcp:127.0.0.1:${echoPort}-:7`);
  expect(launched.command).toContain('pcie-root-port,id=rp-nic1');
  await waitFor(() => serial().includes(READY_MARKER), 90_000, 'guest READY');
}, 150_000);

afterAll(async () => {
  if (isoFd !== null) fs.closeSync(isoFd);
  if (runtime) await runtime.stop(vmId).catch(() => undefined);
  if (pid !== null) {
    try {
      process.kill(pid, 'SIGKILL'); // by pid only; normally gone already
    } catch {
      /* gone */
    }
  }
  if (work) fs.rmSync(work, { recursive: true, force: true });
});

describe('NICs of the QEMU runtime on a real guest (issue 11)', () => {
  it('the guest gets its user-mode address by DHCP and serves its marker and the echo through the forwards given at start', async () => {
    await waitFor(() => serial().includes('TESTGUEST IP eth0 10.0.2.15'), 30_000, 'TESTGUEST IP eth0 10.0.2.15');
    const body = await marker(httpPort);
    expect(body).toMatch(/^HTTP\/1\.[01] 200/);
    expect(body).toContain(`TESTGUEST_HTTP ${MAC0}`); // the VM names itself by its first NIC's MAC
    expect(await echo(echoPort, 'echo-me-42')).toBe('echo-me-42');
  }, 60_000);

  it('a forward added live opens its port, removed live closes it; a port in use is PORT_IN_USE', async () => {
    const port = await freePort();
    expect(await refused(port)).toBe(true);
    await runtime.addUserForward(vmId, 0, fwd(port, 80));
    expect(await marker(port)).toContain(`TESTGUEST_HTTP ${MAC0}`);
    await runtime.removeUserForward(vmId, 0, fwd(port, 80));
    expect(await refused(port)).toBe(true);
    // the start's forwards still work
    expect(await echo(echoPort, 'still-here')).toBe('still-here');

    const held = await freePort();
    const blocker = await holdPort(held);
    try {
      await expect(runtime.addUserForward(vmId, 0, fwd(held, 80))).rejects.toMatchObject({ code: 'PORT_IN_USE' });
    } finally {
      blocker.close();
    }
    // removing a forward that is not there is QEMU's refusal, not a success
    await expect(runtime.removeUserForward(vmId, 0, fwd(held, 80))).rejects.toMatchObject({ code: 'QEMU_ERROR' });
    // a NIC that does not exist
    await expect(runtime.addUserForward(vmId, 5, fwd(port, 80))).rejects.toMatchObject({ code: 'QEMU_ERROR' });
  }, 60_000);

  it('hot-plug: a second user NIC (e1000e) appears in the guest with its own NAT and forward, and goes again on unplug', async () => {
    const port = await freePort();
    const before = serial().length;
    await runtime.attachNic(vmId, { slot: 1, model: 'e1000e', mac: MAC1, kind: 'user', forwards: [fwd(port, 80)] });
    // each user-mode netdev is its own NAT, so the new NIC gets 10.0.2.15 too
    await waitFor(() => serial().slice(before).includes('TESTGUEST IP eth1 10.0.2.15'), 40_000, 'TESTGUEST IP eth1 10.0.2.15');
    // the new netdev listens for its forward (the guest has 10.0.2.15 on both NICs, so its answers
    // leave by eth0's route: the lease over eth1 is the proof that eth1 carries traffic)
    expect(await refused(port)).toBe(false);
    // the same slot twice is refused
    await expect(runtime.attachNic(vmId, { slot: 1, model: 'virtio', mac: '52:54:00:11:22:03', kind: 'user', forwards: [] })).rejects.toMatchObject({ code: 'QEMU_ERROR' });

    await runtime.detachNic(vmId, 1);
    expect(await refused(port)).toBe(true); // the netdev (and its forward) is gone
    // the guest let go of it: eth1 is no longer there
    const ch = runtime.serial(vmId)!;
    ch.write(Buffer.from('\recho NETS=$(ls /sys/class/net | tr "\\n" " ")END\r'));
    const nets = await waitFor(() => /NETS=([^\r\n]*)END/.exec(serial().slice(before).replace(/NETS=\$\(/g, ''))?.[1], 20_000, 'the list of interfaces');
    expect(nets.trim().split(/\s+/).sort()).toEqual(['eth0', 'lo']);
    // and the first NIC still works
    expect(await echo(echoPort, 'after-unplug')).toBe('after-unplug');
    await expect(runtime.detachNic(vmId, 1)).rejects.toMatchObject({ code: 'QEMU_ERROR' });

    // an rtl8139 (the guest's 8139cp driver) in another slot: the guest names it eth1 again and asks for a lease again
    const again = serial().length;
    await runtime.attachNic(vmId, { slot: 2, model: 'rtl8139', mac: '52:54:00:11:22:05', kind: 'user', forwards: [] });
    await waitFor(() => serial().slice(again).includes('TESTGUEST IP eth1 10.0.2.15'), 40_000, 'TESTGUEST IP eth1 10.0.2.15 (rtl8139)');
    await runtime.detachNic(vmId, 2);
    // slot 0 sits on q35's root bus: it cannot be unplugged live
    await expect(runtime.detachNic(vmId, 0)).rejects.toMatchObject({ code: 'VM_NOT_STOPPED' });
  }, 90_000);

  it('after a server restart (adopt with the recorded NICs) forwards and hot-plug work as before', async () => {
    runtime.detachAll(); // the server goes; the VM keeps running
    runtime = makeRuntime();
    const nics: LaunchNic[] = [{ slot: 0, model: 'virtio', mac: MAC0, kind: 'user', forwards: [fwd(httpPort, 80), fwd(echoPort, 7)] }];
    const adopted = await runtime.adopt(vmId, { pid: pid!, pidStart: null }, nics);
    expect(adopted?.process.pid).toBe(pid);
    const port = await freePort();
    await runtime.addUserForward(vmId, 0, fwd(port, 80));
    expect(await marker(port)).toContain(`TESTGUEST_HTTP ${MAC0}`);
    await runtime.removeUserForward(vmId, 0, fwd(port, 80));
    expect(await refused(port)).toBe(true);
    // the root ports are known from the adopted QEMU's command line
    const from = serial().length;
    await runtime.attachNic(vmId, { slot: 3, model: 'virtio', mac: '52:54:00:11:22:06', kind: 'user', forwards: [] });
    await waitFor(() => serial().slice(from).includes('TESTGUEST IP eth1 10.0.2.15'), 40_000, 'TESTGUEST IP eth1 10.0.2.15 (after adopt)');
    await runtime.detachNic(vmId, 3);
    await expect(runtime.detachNic(vmId, 0)).rejects.toMatchObject({ code: 'VM_NOT_STOPPED' });
  }, 90_000);

  it('a NIC on a bridge needs host networking: without TapDevices the hot-plug is refused and nothing is added', async () => {
    await expect(runtime.attachNic(vmId, { slot: 2, model: 'virtio', mac: '52:54:00:11:22:04', kind: 'bridge', bridge: 'qm-none' })).rejects.toMatchObject({
      code: 'NETWORKS_UNAVAILABLE',
    });
    const stats = await runtime.stats(vmId);
    expect(stats.nics).toEqual([]); // user-mode NICs have no counters of their own
  }, 30_000);
});

describe('a NIC on a bridge: the tap around the QEMU process (issue 11)', () => {
  // A tap made by these TapDevices is left DOWN and on no bridge: QEMU can open it, nothing the
  // guest sends goes anywhere (no packet leaves the test).
  const calls: string[] = [];
  const made = new Set<string>();
  const linkExists = (name: string) => {
    try {
      execFileSync('ip', ['link', 'show', 'dev', name], { stdio: 'ignore' });
      return true;
    } catch {
      return false;
    }
  };
  const taps = {
    async create(name: string, uid: number | null, bridge: string) {
      calls.push(`create ${name} ${uid} ${bridge}`);
      execFileSync('ip', ['tuntap', 'add', 'dev', name, 'mode', 'tap']);
      made.add(name);
    },
    async remove(name: string) {
      calls.push(`remove ${name}`);
      if (linkExists(name)) execFileSync('ip', ['link', 'del', 'dev', name]);
      made.delete(name);
    },
    stats(name: string) {
      return made.has(name) ? { rxBytes: 11, txBytes: 22 } : null;
    },
  };
  const tapVm = '5a4b3c2d-1e0f-4a9b-8c7d-6e5f4a3b2c1d';
  let rt: QemuRuntimeClass;
  let work2: string;

  beforeAll(async () => {
    const { QemuRuntime } = (await import(dist('qemu/runtime.js'))) as typeof import('../../packages/server/dist/qemu/runtime.js');
    const { IdentityPool } = (await import(dist('qemu/identity.js'))) as typeof import('../../packages/server/dist/qemu/identity.js');
    const { StorageRoots } = (await import(dist('lib/storage.js'))) as typeof import('../../packages/server/dist/lib/storage.js');
    work2 = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-nics-tap-'));
    fs.mkdirSync(path.join(work2, 'run'));
    rt = new QemuRuntime({
      qemuBinary: 'qemu-system-x86_64',
      runRoot: path.join(work2, 'run'),
      pool: IdentityPool.fromSetting('', log),
      storage: new StorageRoots([work2]),
      isolation: { confine: async () => undefined, confineAdopted: async () => undefined },
      vncTcp: false,
      log,
      stateRoot: path.join(work2, 'vms'),
      taps,
    });
  });

  afterAll(async () => {
    await rt?.stop(tapVm).catch(() => undefined);
    for (const name of [...made]) await taps.remove(name).catch(() => undefined);
    if (work2) fs.rmSync(work2, { recursive: true, force: true });
  });

  const launch = (bridge: string) => ({
    vmId: tapVm,
    name: 'nics-tap',
    cpus: 1,
    memoryMiB: 64,
    mac: MAC0,
    vncDisplay: 0,
    accel: 'tcg' as const,
    disks: [],
    iso: null,
    hardware: { firmware: 'bios' as const, secureBoot: false, tpm: false, machine: 'pc' as const },
    nics: [
      { slot: 0, model: 'virtio' as const, mac: MAC0, kind: 'user' as const, forwards: [] },
      { slot: 1, model: 'e1000e' as const, mac: MAC1, kind: 'bridge' as const, bridge },
    ],
  });

  it('the tap is made before QEMU starts, given to it by name, counted in stats, and removed once QEMU is gone', async () => {
    const { tapName } = (await import(dist('runtime/port.js'))) as typeof import('../../packages/server/dist/runtime/port.js');
    const name = tapName(tapVm, 1);
    const launched = await rt.start(launch('qm-test'));
    expect(calls).toEqual([`create ${name} null qm-test`]);
    expect(launched.command).toContain(`tap,id=net1,ifname=${name},script=no,downscript=no`);
    expect(launched.command).toContain(`e1000e,id=nic1,netdev=net1,mac=${MAC1}`);
    expect((await rt.stats(tapVm)).nics).toEqual([{ id: 'nic1', rxBytes: 11, txBytes: 22 }]);
    await rt.stop(tapVm);
    expect(calls).toEqual([`create ${name} null qm-test`, `remove ${name}`]);
    expect(linkExists(name)).toBe(false);
  }, 60_000);

  it('a forward whose host port is taken fails the start with PORT_IN_USE', async () => {
    const held = await freePort();
    const blocker = await holdPort(held);
    try {
      await expect(
        rt.start({ ...launch('qm-test'), nics: [{ slot: 0, model: 'virtio', mac: MAC0, kind: 'user', forwards: [fwd(held, 80)] }] }),
      ).rejects.toMatchObject({ code: 'PORT_IN_USE' });
    } finally {
      blocker.close();
    }
    expect(rt.process(tapVm)).toBeNull();
  }, 60_000);

  it('a tap that cannot be made fails the start before QEMU runs, and what was begun is given back', async () => {
    const { tapName } = (await import(dist('runtime/port.js'))) as typeof import('../../packages/server/dist/runtime/port.js');
    const name = tapName(tapVm, 1);
    calls.length = 0;
    const create = taps.create;
    taps.create = async (n: string, uid: number | null, bridge: string) => {
      calls.push(`create ${n} ${uid} ${bridge}`);
      throw new Error(`${bridge} is not a bridge`);
    };
    try {
      await expect(rt.start(launch('qm-test'))).rejects.toMatchObject({ code: 'QEMU_START_FAILED' });
    } finally {
      taps.create = create;
    }
    expect(calls).toEqual([`create ${name} null qm-test`, `remove ${name}`]);
    expect(rt.process(tapVm)).toBeNull();
  }, 60_000);
});
