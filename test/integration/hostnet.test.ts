/**
 * The host network adapter (packages/server/src/hostnet/) for real: iproute2, dnsmasq and
 * nftables inside a network namespace this test creates, with a DHCP client in a second one
 * (a veth pair into the managed bridge). The adapter runs in short-lived driver processes inside
 * the namespace (`ip netns exec … node`), each executing a JSON list of operations, so a
 * "server restart" is simply the next driver: reconcile must adopt the dnsmasq the first one
 * started. No QEMU. Everything made is removed; both namespaces are deleted at the end.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Netns } from './netns.js';

const root = typeof process.getuid === 'function' && process.getuid() === 0;
const haveTools = ['/usr/sbin/dnsmasq', '/bin/busybox'].every((p) => fs.existsSync(p));

const MODULE = path.resolve('packages/server/dist/hostnet/index.js');
const DRIVER = `
const [mod, runDir, ops] = process.argv.slice(1);
const { createHostNetworks } = await import(mod);
const log = { info() {}, warn(o, m) { console.error('warn', m, JSON.stringify(o)); }, error(o, m) { console.error('error', m, JSON.stringify(o)); } };
const h = createHostNetworks({ runDir, log });
const out = [];
for (const o of JSON.parse(ops)) {
  try {
    const value = o.op === 'reconcile' ? await h.reconcile(o.args[0], o.args[1], new Map(o.args[2])) : await h[o.op](...o.args);
    out.push({ ok: true, value: value ?? null });
  } catch (e) {
    out.push({ ok: false, code: e.code ?? null, message: String(e.message) });
  }
}
console.log('RESULT ' + JSON.stringify(out));
`;

const CLIENT_MAC = '52:54:00:12:34:56';
const GUEST_IP = '10.77.0.10';
const MARKER = 'HOSTNET_MARKER_7';
const spec = {
  id: 'net-t1',
  name: 't1',
  type: 'nat',
  bridge: 'qm-t1',
  subnet: '10.77.0.0/24',
  gateway: '10.77.0.1',
  dhcp: { start: '10.77.0.10', end: '10.77.0.50' },
  hosts: [] as Array<{ mac: string; ip: string }>,
};
const forward = { id: 'f1', protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2280, guestIp: GUEST_IP, guestPort: 80, bridge: 'qm-t1' };
const iso = {
  id: 'net-t2',
  name: 't2',
  type: 'isolated',
  bridge: 'qm-t2',
  subnet: '10.78.0.0/24',
  gateway: '10.78.0.1',
  dhcp: { start: '10.78.0.10', end: '10.78.0.50' },
  hosts: [{ mac: '52:54:00:12:34:57', ip: '10.78.0.10' }],
};
const TAP = 'qm-0123abcd.0';
const HOST_ADDR = '192.0.2.1'; // an address of the namespace's own (on a veth link whose peer stays inside)

let ns: Netns;
let client: Netns;
let client2: Netns;
let dataDir: string;
let runDir: string;
const pids = new Set<number>();

type Result = { ok: boolean; value?: any; code?: string | null; message?: string };

function drive(ops: Array<{ op: string; args: unknown[] }>): Result[] {
  const r = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, '--input-type=module', '-e', DRIVER, MODULE, runDir, JSON.stringify(ops)], {
    encoding: 'utf8',
    timeout: 60_000,
  });
  const line = r.stdout.split('\n').find((l) => l.startsWith('RESULT '));
  if (!line) throw new Error(`driver failed (${r.status}): ${r.stdout} ${r.stderr}`);
  const out = JSON.parse(line.slice('RESULT '.length)) as Result[];
  for (const [i, res] of out.entries()) if (!res.ok) throw new Error(`${ops[i].op} failed: ${res.code} ${res.message}\n${r.stderr}`);
  return out;
}

const linksIn = (n: Netns) => (JSON.parse(n.exec('ip', '-j', '-d', 'link', 'show')) as Array<{ ifname: string; master?: string; linkinfo?: { info_kind?: string } }>);
const qmLinks = () => linksIn(ns).filter((l) => l.ifname.startsWith('qm-')).map((l) => l.ifname).sort();
const pidFile = () => path.join(runDir, `${spec.id}.pid`);
const dnsmasqPid = () => Number(fs.readFileSync(pidFile(), 'utf8').trim());
const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').includes(') Z ');
  } catch {
    return false;
  }
};
function dhcpClient(): string {
  const r = spawnSync('ip', ['netns', 'exec', client.name, 'busybox', 'udhcpc', '-i', 'vc0', '-f', '-q', '-n', '-t', '6', '-T', '1', '-s', '/bin/true', '-x', 'hostname:client1'], {
    encoding: 'utf8',
    timeout: 30_000,
  });
  return r.stdout + r.stderr;
}
/** From the client (the guest's side), all at once: connects to each ip:port; what came, or why not (1.5 s at most). */
function probe(...targets: Array<[string, number]>): string[] {
  return probeFrom(client, targets);
}
function probeFrom(from: Netns, targets: Array<[string, number]>): string[] {
  const js = `
const net = require('node:net');
const one = ([ip, port]) => new Promise((resolve) => {
  const s = net.connect(port, ip); let d = '';
  const t = setTimeout(() => { s.destroy(); resolve('NO ANSWER'); }, 1500);
  s.on('data', (b) => (d += b));
  s.on('end', () => { clearTimeout(t); resolve('DATA ' + d); });
  s.on('error', (e) => { clearTimeout(t); resolve('ERR ' + e.code); });
});
Promise.all(${JSON.stringify(targets)}.map(one)).then((r) => console.log(JSON.stringify(r)));`;
  return JSON.parse(from.exec(process.execPath, '-e', js));
}
const table = () => spawnSync('ip', ['netns', 'exec', ns.name, 'nft', 'list', 'table', 'inet', 'qemu_manager'], { encoding: 'utf8' });

describe.runIf(root && haveTools)('host network adapter in a network namespace', () => {
  /** /dev/net/tun's mode before the run (a tap for an unprivileged user opens it to users; given back after). */
  let tunMode: number | null = null;
  beforeAll(() => {
    tunMode = fs.existsSync('/dev/net/tun') ? fs.statSync('/dev/net/tun').mode & 0o7777 : null;
    ns = Netns.create();
    client = Netns.create();
    client2 = Netns.create();
    dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-hostnet-'));
    runDir = path.join(dataDir, 'run', 'net');
    fs.mkdirSync(path.dirname(runDir), { mode: 0o700 });
  });

  afterAll(async () => {
    if (tunMode !== null && (fs.statSync('/dev/net/tun').mode & 0o7777) !== tunMode) fs.chmodSync('/dev/net/tun', tunMode);
    // A failed test may leave a dnsmasq of ours: ended by the pid in its pid file (never by name),
    // once its cmdline names that file.
    for (const f of fs.existsSync(runDir) ? fs.readdirSync(runDir).filter((e) => e.endsWith('.pid')) : []) {
      const file = path.join(runDir, f);
      const pid = Number(fs.readFileSync(file, 'utf8').trim());
      if (pid > 0 && alive(pid) && fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').includes(`--pid-file=${file}`)) process.kill(pid, 'SIGKILL');
    }
    for (const pid of pids) if (alive(pid)) process.kill(pid, 'SIGKILL');
    await client?.delete();
    await client2?.delete();
    await ns?.delete();
    if (dataDir) fs.rmSync(dataDir, { recursive: true, force: true });
  });

  it('brings a nat network up: bridge with the gateway, our dnsmasq, the rule chains', () => {
    // The namespace's own network: an address on a veth link (its peer stays inside) and a route through it.
    ns.exec('ip', 'link', 'add', 'hq0', 'type', 'veth', 'peer', 'name', 'hq1');
    ns.exec('ip', 'addr', 'add', `${HOST_ADDR}/24`, 'dev', 'hq0');
    ns.exec('ip', 'link', 'set', 'hq1', 'up');
    ns.exec('ip', 'link', 'set', 'hq0', 'up');
    ns.exec('ip', 'route', 'add', '198.51.100.0/25', 'dev', 'hq0');
    const [avail, , , , subnets] = drive([
      { op: 'availability', args: [] },
      { op: 'up', args: [spec] },
      { op: 'up', args: [spec] }, // idempotent: adopts its own dnsmasq
      { op: 'applyRules', args: [[spec], []] },
      { op: 'hostSubnets', args: [] },
    ]);
    expect(avail.ok && avail.value).toEqual({ available: true, reason: null });
    // Ours (10.77.0.0/24 on qm-t1) and loopback are left out.
    expect(subnets.value).toEqual(['192.0.2.0/24', '198.51.100.0/25']);
    expect(qmLinks()).toEqual(['qm-t1']);
    expect(fs.existsSync(`/sys/class/net/qm-t1`)).toBe(false); // our host is untouched: it lives in the namespace
    const addrs = JSON.parse(ns.exec('ip', '-j', '-4', 'addr', 'show', 'dev', 'qm-t1'));
    expect(addrs[0].addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual(['10.77.0.1/24']);
    expect(ns.exec('cat', '/proc/sys/net/ipv4/conf/qm-t1/route_localnet').trim()).toBe('1');
    expect(ns.exec('cat', '/proc/sys/net/ipv4/ip_forward').trim()).toBe('1');
    const pid = dnsmasqPid();
    pids.add(pid);
    expect(alive(pid)).toBe(true);
    expect(fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0')).toContain(`--pid-file=${pidFile()}`);
    // It dropped to nobody (its default) and still keeps its lease file (next test).
    expect(fs.readFileSync(`/proc/${pid}/status`, 'utf8')).toMatch(/^Uid:\s+65534\s/m);
    const t = table();
    expect(t.status).toBe(0);
    for (const c of ['net_input', 'net_forward', 'net_prerouting', 'net_output', 'net_postrouting']) expect(t.stdout).toContain(`chain ${c} {`);
    expect(t.stdout).toContain('oifname != "qm-t1" ip saddr 10.77.0.0/24 masquerade');
  });

  it('a client on the bridge gets its fixed address from that dnsmasq, and the lease is listed', async () => {
    ns.exec('ip', 'link', 'add', 'vh0', 'type', 'veth', 'peer', 'name', 'vc0', 'netns', client.name);
    ns.exec('ip', 'link', 'set', 'vh0', 'master', 'qm-t1', 'up');
    client.exec('ip', 'link', 'set', 'vc0', 'address', CLIENT_MAC, 'up');
    // The address is given only once the hosts file names the mac (dnsmasq re-reads it as nobody on SIGHUP).
    drive([{ op: 'setHosts', args: [spec.id, [{ mac: CLIENT_MAC, ip: GUEST_IP }]] }]);
    expect(dhcpClient()).toContain(`lease of ${GUEST_IP} obtained from 10.77.0.1`);
    let leases: any[] = [];
    for (let i = 0; i < 50 && leases.length === 0; i++) {
      leases = drive([{ op: 'reconcile', args: [[{ ...spec, hosts: [{ mac: CLIENT_MAC, ip: GUEST_IP }] }], [], []] }, { op: 'leases', args: [spec.id] }])[1].value;
      if (leases.length === 0) await new Promise((r) => setTimeout(r, 100));
    }
    expect(leases).toEqual([{ mac: CLIENT_MAC, ip: GUEST_IP, hostname: 'client1', expiresAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT/) }]);
  });

  it('a 127.0.0.1 forward reaches the guest from the host itself (DNAT, route_localnet, masquerade)', async () => {
    client.exec('ip', 'addr', 'add', `${GUEST_IP}/24`, 'dev', 'vc0');
    client.exec('ip', 'route', 'add', 'default', 'via', '10.77.0.1'); // as its DHCP answer says (router option)
    const server = await client.spawn(
      [process.execPath, '-e', `require('node:net').createServer((c) => c.end('${MARKER}')).listen(80, '${GUEST_IP}', () => console.log('listening'))`],
      'listening',
    );
    pids.add(server.pid!);
    const [, free] = drive([
      { op: 'applyRules', args: [[spec], [forward]] },
      { op: 'portFree', args: ['tcp', '127.0.0.1', forward.hostPort] },
    ]);
    expect(free.ok && free.value).toBe(false); // the forward holds the port
    expect(table().stdout).toContain(`ip daddr 127.0.0.1 tcp dport ${forward.hostPort} dnat ip to ${GUEST_IP}:80`);
    const got = ns.exec(process.execPath, '-e', `const s = require('node:net').connect(${forward.hostPort}, '127.0.0.1'); let d = ''; s.on('data', (b) => (d += b)); s.on('end', () => console.log(d)); s.on('error', (e) => console.log('ERR ' + e.message)); setTimeout(() => s.destroy(), 10000).unref();`);
    expect(got.trim()).toBe(MARKER);
  });

  it('a 0.0.0.0 forward reaches the guest at any local address; portFree sees sockets and forwards', async () => {
    const any = { ...forward, id: 'f2', hostAddress: '0.0.0.0', hostPort: 2281 };
    const listener = await ns.spawn([process.execPath, '-e', `require('node:net').createServer(() => {}).listen(2290, '127.0.0.1', () => console.log('listening'))`], 'listening');
    pids.add(listener.pid!);
    const service = await ns.spawn([process.execPath, '-e', `require('node:net').createServer((c) => c.end('host-secret')).listen(2293, '0.0.0.0', () => console.log('listening'))`], 'listening');
    pids.add(service.pid!);
    const free = drive([
      { op: 'applyRules', args: [[spec], [forward, any]] },
      { op: 'portFree', args: ['tcp', '127.0.0.1', 2290] }, // a socket holds it
      { op: 'portFree', args: ['tcp', '0.0.0.0', 2290] }, // 0.0.0.0 covers 127.0.0.1
      { op: 'portFree', args: ['tcp', '127.0.0.1', 2281] }, // the 0.0.0.0 forward covers 127.0.0.1
      { op: 'portFree', args: ['udp', '127.0.0.1', 2281] }, // another protocol
      { op: 'portFree', args: ['tcp', '127.0.0.1', 2291] },
    ]).slice(1).map((r) => r.value);
    expect(free).toEqual([false, false, false, true, true]);
    expect(table().stdout).toContain(`fib daddr type local tcp dport 2281 dnat ip to ${GUEST_IP}:80`);
    const got = ns.exec(process.execPath, '-e', `const s = require('node:net').connect(2281, '${HOST_ADDR}'); let d = ''; s.on('data', (b) => (d += b)); s.on('end', () => console.log(d)); s.on('error', (e) => console.log('ERR ' + e.message)); setTimeout(() => s.destroy(), 10000).unref();`);
    expect(got.trim()).toBe(MARKER);
  });

  it('a guest reaches the host only for DHCP and DNS: other host services are dropped', () => {
    // Control: with no network chains a host service on every address answers the guest.
    drive([{ op: 'applyRules', args: [[], []] }]);
    const targets: Array<[string, number]> = [['10.77.0.1', 2290], ['10.77.0.1', 2293], [HOST_ADDR, 2293]];
    // (2290 is bound to 127.0.0.1 only: refused, not dropped)
    expect(probe(...targets)).toEqual(['ERR ECONNREFUSED', 'DATA host-secret', 'DATA host-secret']);
    drive([{ op: 'applyRules', args: [[spec], [forward]] }]);
    expect(probe(...targets)).toEqual(['NO ANSWER', 'NO ANSWER', 'NO ANSWER']);
    // DNS on the gateway answers (dnsmasq knows the client's DHCP name).
    const dns = client.exec('busybox', 'nslookup', 'client1', '10.77.0.1');
    expect(dns).toContain(GUEST_IP);
  });

  it('an isolated network: DHCP without a default route, and nothing forwarded between networks', () => {
    // (until its rules are in, a new qm- bridge is dropped like any other: up, then applyRules)
    drive([{ op: 'up', args: [iso] }, { op: 'applyRules', args: [[spec, iso], [forward]] }]);
    ns.exec('ip', 'link', 'add', 'vh2', 'type', 'veth', 'peer', 'name', 'vc2', 'netns', client2.name);
    ns.exec('ip', 'link', 'set', 'vh2', 'master', 'qm-t2', 'up');
    client2.exec('ip', 'link', 'set', 'vc2', 'address', iso.hosts[0].mac, 'up');
    // udhcpc hands the router option (if any) to its script as $router: printed by this one.
    const script = path.join(dataDir, 'udhcpc.sh');
    fs.writeFileSync(script, '#!/bin/sh\n[ "$1" = bound ] && echo "BOUND ip=$ip router=${router:-none}"\nexit 0\n', { mode: 0o755 });
    const dhcp = client2.exec('busybox', 'udhcpc', '-i', 'vc2', '-f', '-q', '-n', '-t', '6', '-T', '1', '-s', script);
    expect(dhcp).toContain('BOUND ip=10.78.0.10 router=none');
    client2.exec('ip', 'addr', 'add', '10.78.0.10/24', 'dev', 'vc2');
    client2.exec('ip', 'route', 'add', 'default', 'via', '10.78.0.1'); // even if a guest sets one itself
    // Control: without the rules the host routes between the two bridges.
    drive([{ op: 'applyRules', args: [[], []] }]);
    expect(probeFrom(client2, [[GUEST_IP, 80]])).toEqual([`DATA ${MARKER}`]);
    drive([{ op: 'applyRules', args: [[spec, iso], [forward]] }]);
    expect(probeFrom(client2, [[GUEST_IP, 80], [HOST_ADDR, 2293]])).toEqual(['NO ANSWER', 'NO ANSWER']);
    // The host itself still reaches a guest of an isolated network.
    expect(ns.exec(process.execPath, '-e', `require('node:net').connect(80, '10.78.0.10').on('error', (e) => console.log(e.code))`).trim()).toBe('ECONNREFUSED');
    drive([{ op: 'down', args: [{ id: iso.id, bridge: iso.bridge }] }]);
    expect(qmLinks()).not.toContain('qm-t2');
  });

  it('reconcile after a restart adopts the dnsmasq and removes what belongs to no network', () => {
    const before = dnsmasqPid();
    // Stale things: a qm- bridge of no network, a tap not kept, a pid file of no network naming a
    // process that is not ours (it must not be signalled), and a tap that is kept.
    ns.exec('ip', 'link', 'add', 'qm-stale', 'type', 'bridge');
    ns.exec('ip', 'tuntap', 'add', 'dev', 'qm-deadbeef.1', 'mode', 'tap');
    const notOurs = spawn('sleep', ['60'], { stdio: 'ignore' });
    pids.add(notOurs.pid!);
    fs.writeFileSync(path.join(runDir, 'gone.pid'), `${notOurs.pid}\n`);
    const [, , stats] = drive([
      { op: 'create', args: [TAP, 65534, 'qm-t1'] },
      { op: 'reconcile', args: [[{ ...spec, hosts: [{ mac: CLIENT_MAC, ip: GUEST_IP }] }], [forward], [[TAP, 'qm-t1']]] },
      { op: 'stats', args: [TAP] },
    ]);
    expect(dnsmasqPid()).toBe(before);
    expect(alive(before)).toBe(true);
    expect(alive(notOurs.pid!)).toBe(true);
    expect(fs.existsSync(path.join(runDir, 'gone.pid'))).toBe(false);
    expect(qmLinks()).toEqual([TAP, 'qm-t1']);
    const tap = linksIn(ns).find((l) => l.ifname === TAP)!;
    expect(tap.master).toBe('qm-t1');
    expect(tap.linkinfo?.info_kind).toBe('tun');
    expect(ns.exec('cat', `/sys/class/net/${TAP}/owner`).trim()).toBe('65534'); // the VM's QEMU user opens it, nobody else
    expect(stats.ok && stats.value).toEqual({ rxBytes: expect.any(Number), txBytes: expect.any(Number) });
    expect(table().stdout).toContain(`dport ${forward.hostPort} dnat ip to ${GUEST_IP}:80`);
    notOurs.kill('SIGKILL');
  });

  it('reconcile recreates a bridge that went away, with a new dnsmasq that serves it', () => {
    const before = dnsmasqPid();
    ns.exec('ip', 'link', 'del', 'qm-t1'); // its tap and the client's veth are let go
    drive([{ op: 'reconcile', args: [[{ ...spec, hosts: [{ mac: CLIENT_MAC, ip: GUEST_IP }] }], [forward], [[TAP, 'qm-t1']]] }]);
    const after = dnsmasqPid();
    pids.add(after);
    expect(after).not.toBe(before);
    expect(alive(before)).toBe(false);
    expect(alive(after)).toBe(true);
    ns.exec('ip', 'link', 'set', 'vh0', 'master', 'qm-t1', 'up');
    // the kept tap (a running VM's) is back on the bridge made again
    expect(linksIn(ns).find((l) => l.ifname === TAP)?.master).toBe('qm-t1');
    expect(dhcpClient()).toContain(`lease of ${GUEST_IP} obtained from 10.77.0.1`);
    expect(table().stdout).toContain(`dport ${forward.hostPort} dnat ip to ${GUEST_IP}:80`);
  });

  it('refuses a bad name before running anything, and undoes a failed up', () => {
    ns.exec('ip', 'link', 'add', 'br-host', 'type', 'bridge');
    const r = spawnSync('ip', ['netns', 'exec', ns.name, process.execPath, '--input-type=module', '-e', DRIVER, MODULE, runDir, JSON.stringify([
      { op: 'up', args: [{ ...spec, id: 'net-bad', bridge: 'qm-x;reboot' }] },
      // The gateway is outside the subnet: refused before the bridge is made.
      { op: 'up', args: [{ ...spec, id: 'net-bad', bridge: 'qm-bad', gateway: '10.99.0.1' }] },
      // dnsmasq cannot bind 10.77.0.1:53 twice: the new bridge qm-dup is removed again.
      { op: 'up', args: [{ ...spec, id: 'net-dup', name: 'dup', bridge: 'qm-dup', subnet: '10.77.0.0/24' }] },
      { op: 'isBridge', args: ['br-host'] },
      { op: 'isBridge', args: ['hq0'] },
      { op: 'isBridge', args: ['qm-t1'] },
      { op: 'isBridge', args: ['../../etc'] },
    ])], { encoding: 'utf8', timeout: 60_000 });
    const out = JSON.parse(r.stdout.split('\n').find((l) => l.startsWith('RESULT '))!.slice(7));
    expect(out.slice(0, 3).map((o: Result) => (o.ok ? 'ok' : o.code))).toEqual(['NETWORK_SETUP_FAILED', 'NETWORK_SETUP_FAILED', 'NETWORK_SETUP_FAILED']);
    expect(out[0].message).toContain('Refusing the link name');
    expect(out[2].message).toMatch(/dnsmasq/);
    expect(out.slice(3).map((o: any) => o.value)).toEqual([true, false, false, false]);
    expect(qmLinks()).toEqual([TAP, 'qm-t1']);
    expect(fs.readdirSync(runDir).filter((f) => !f.startsWith('net-t1.'))).toEqual([]);
  });

  it('down leaves nothing; then the chains and the empty table go', () => {
    const pid = dnsmasqPid();
    drive([
      { op: 'down', args: [{ id: spec.id, bridge: spec.bridge }] },
      { op: 'applyRules', args: [[], []] },
    ]);
    expect(qmLinks()).toEqual([]);
    expect(alive(pid)).toBe(false);
    expect(fs.readdirSync(runDir)).toEqual([]);
    const t = table();
    expect(t.status).toBe(0);
    expect(t.stdout).not.toContain('chain net_');
    drive([{ op: 'removeTableIfEmpty', args: [] }]);
    expect(table().status).not.toBe(0);
  });
});
