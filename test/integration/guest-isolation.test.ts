/**
 * A guest never reaches a host service it was not given. Real guests, booted inside a network
 * namespace this test creates (loopback with one more address, nothing that leads off the host),
 * try the host through QEMU's user-mode network: the server's API at the gateway 10.0.2.2
 * (which user-mode networking maps to the host's 127.0.0.1), another loopback service, and the
 * same service at one of the host's own non-loopback addresses.
 *
 * The control: a second server in the same namespace with QEMU_USER= (QEMU as root, which cannot
 * be told apart from the server by the kernel, so it is documented as not isolated). Its guest
 * runs the same probes and gets through, which shows the probes work and what a guest could do
 * before the rules existed.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTestGuestIso, writeScriptDisk } from '../guest/index.js';
import { TestServer, makeDataDir, serialLog, waitFor } from './harness.js';
import { Netns, portInNamespace } from './netns.js';

const SECRET = 'HOST_SERVICE_SECRET_42';
const HOST_ADDR = '192.0.2.1'; // a non-loopback address the "host" (the namespace) owns

const root = typeof process.getuid === 'function' && process.getuid() === 0;

let ns: Netns;
const servers: TestServer[] = [];
let secretPort = 0;

function probeScript(apiPort: number): string {
  // Each probe prints one line: `PROBE <what> <first bytes of the answer, or FAILED>`.
  return `
ip link set eth0 up
timeout 20 udhcpc -i eth0 -n -q -t 4 -s /bin/true 2>&1 | grep -q 'lease of 10.0.2.15' && echo 'PROBE dhcp OK' || echo 'PROBE dhcp FAILED'
# the guest configures eth0 itself (its own udhcpc): wait for its address and default route
for i in $(seq 100); do
  ip -4 addr show dev eth0 | grep -q 'inet 10.0.2.15/' && ip route | grep -q '^default via 10.0.2.2' && break
  sleep 0.2
done
probe() {
  out=$("$@" 2>/dev/null | tr -d '\\r\\n' | head -c 400)
  echo "PROBE $WHAT \${out:-FAILED}"
}
WHAT=api probe timeout 10 sh -c "printf 'GET /api/vms HTTP/1.0\\r\\nHost: 10.0.2.2\\r\\n\\r\\n' | nc -w 5 10.0.2.2 ${apiPort}"
WHAT=loopback probe timeout 10 nc -w 5 10.0.2.2 ${secretPort}
WHAT=hostaddr probe timeout 10 nc -w 5 ${HOST_ADDR} ${secretPort}
`;
}

async function bootProber(env: Record<string, string>): Promise<{ server: TestServer; vmId: string }> {
  const iso = await ensureTestGuestIso();
  const port = portInNamespace();
  const server = new TestServer(makeDataDir(), env, { wrap: ns.wrap, port, url: await ns.relayTo(port) });
  servers.push(server);
  await server.start();
  const isoPath = path.join(server.dataDir, 'isos', 'testguest.iso');
  fs.copyFileSync(iso, isoPath);
  const diskPath = path.join(server.dataDir, 'disks', 'probe.img');
  await writeScriptDisk(diskPath, probeScript(port));
  const vm = (await server.api('POST', '/vms', { name: 'prober', cpus: 1, memory: 128 })).body.vm;
  expect((await server.api('POST', `/vms/${vm.id}/disks/attach`, { diskPath })).status).toBe(200);
  expect((await server.api('POST', `/vms/${vm.id}/iso/mount`, { isoPath })).status).toBe(200);
  const started = await server.api('POST', `/vms/${vm.id}/start`);
  expect(started.status, JSON.stringify(started.body)).toBe(200);
  return { server, vmId: vm.id };
}

function probes(log: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const m of log.matchAll(/PROBE (\S+) ([^\r\n]*)/g)) out[m[1]] = m[2]!;
  if (!out.dhcp) throw new Error(`no probe results in the serial log:\n${log.slice(-3000)}`);
  return out;
}

describe.runIf(root)('guests and host services (user-mode networking)', () => {
  let confined: Record<string, string>;
  let control: Record<string, string>;
  let confinedServer: TestServer;
  let confinedVm: string;

  beforeAll(async () => {
    ns = Netns.create();
    ns.exec('ip', 'addr', 'add', `${HOST_ADDR}/32`, 'dev', 'lo');
    secretPort = portInNamespace();
    const service = `require('node:net').createServer((s) => s.end('${SECRET}\\n')).listen(${secretPort}, '0.0.0.0', () => console.log('service ready'))`;
    await ns.spawn([process.execPath, '-e', service], 'service ready');

    const [a, b] = await Promise.all([bootProber({}), bootProber({ QEMU_USER: '' })]);
    confinedServer = a.server;
    confinedVm = a.vmId;
    const done = (s: TestServer, id: string) =>
      waitFor(() => serialLog(s.dataDir, id).includes('TESTGUEST_SCRIPT_DONE') && serialLog(s.dataDir, id), 90_000, 'the probe script').catch((err: Error) => {
        throw new Error(`${err.message}; serial log:\n${serialLog(s.dataDir, id).slice(-3000)}\nserver log:\n${s.log.slice(-3000)}`);
      });
    [confined, control] = (await Promise.all([done(a.server, a.vmId), done(b.server, b.vmId)])).map(probes) as [
      Record<string, string>,
      Record<string, string>,
    ];
  });

  afterAll(async () => {
    for (const s of servers) await s.dispose();
    await ns?.delete();
  });

  it('the control guest (QEMU as root) reaches them all: the probes work', () => {
    expect(control.dhcp).toBe('OK');
    expect(control.api).toMatch(/^HTTP\/1\.1 200 OK.*\{"vms":\[/);
    expect(control.loopback).toBe(SECRET);
    expect(control.hostaddr).toBe(SECRET);
  });

  it('a guest of a default server has a working network but reaches none of the host services', () => {
    expect(confined.dhcp).toBe('OK');
    expect(confined).toMatchObject({ api: 'FAILED', loopback: 'FAILED', hostaddr: 'FAILED' });
  });

  it("the QEMU user's uid is in the nftables set of the rules, and health says isolation is on", async () => {
    const vm = (await confinedServer.api('GET', `/vms/${confinedVm}`)).body.vm;
    const uid = Number(fs.readFileSync(`/proc/${vm.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1]);
    expect(uid).not.toBe(0);
    const set = ns.exec('nft', 'list', 'set', 'inet', 'qemu_manager', 'guest_uids');
    expect(set).toMatch(new RegExp(`\\b${uid}\\b`));
    const health = (await confinedServer.api('GET', '/health')).body;
    expect(health.guestIsolation?.enforced).toBe(true);
  });

  it('a QEMU running before the server starts (or before the rules existed) comes under them at adoption', async () => {
    const vm = (await confinedServer.api('GET', `/vms/${confinedVm}`)).body.vm;
    const uid = fs.readFileSync(`/proc/${vm.pid}/status`, 'utf8').match(/^Uid:\s+(\d+)/m)![1];
    await confinedServer.kill();
    // Rules gone (a firewall reload, or a host where an older version ran this VM): the set is empty.
    ns.exec('nft', 'delete', 'table', 'inet', 'qemu_manager');
    await confinedServer.start();
    expect((await confinedServer.api('GET', `/vms/${confinedVm}`)).body.vm.status).toBe('running');
    expect(ns.exec('nft', 'list', 'set', 'inet', 'qemu_manager', 'guest_uids')).toMatch(new RegExp(`\\b${uid}\\b`));
    expect((await confinedServer.api('GET', '/health')).body.guestIsolation).toMatchObject({ enforced: true });
  });

  it('qemu-img reading an image runs as a user that is kept off host services too', async () => {
    const disk = (await confinedServer.api('POST', '/disks', { name: 'inspected', size: 1, format: 'qcow2' })).body.disk;
    await waitFor(async () => (await confinedServer.api('GET', '/disks')).body.disks.find((d: any) => d.id === disk.id)?.status === 'ready', 20_000, 'the disk');
    expect((await confinedServer.api('GET', `/disks/${disk.id}`)).status).toBe(200);
    const uid = fs.readFileSync('/etc/passwd', 'utf8').match(/^qm-img:[^:]*:(\d+):/m)?.[1];
    expect(uid).toBeDefined();
    expect(ns.exec('nft', 'list', 'set', 'inet', 'qemu_manager', 'guest_uids')).toMatch(new RegExp(`\\b${uid}\\b`));
  });
});
