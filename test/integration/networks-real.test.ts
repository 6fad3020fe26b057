/**
 * Networks (issue 11) for real: real QEMU (TCG), real bridges, taps, dnsmasq and nftables, all
 * inside a network namespace this file creates and deletes (the server runs in it with
 * `ip netns exec`, reached through a relay; the "host" that fetches through a forward is a
 * process inside the namespace). No packet leaves the namespace.
 *
 * Three guests, booted once and shared by the scenarios in order:
 *   A, B: first NIC on the nat network `tnat` (10.99.0.0/24);
 *   C:    first NIC user-mode; later a hot-plugged NIC on `tnat` (removed again) and one on the
 *         bridge network `tbr` (the test's own bridge br-t with the test's own dnsmasq).
 * A fourth VM (never started) has no NIC at all, for the forward refusal.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { WebSocket } from 'ws';
import { run, type Io } from '../../packages/cli/src/program.js';
import { ensureTestGuestIso, READY_MARKER } from '../guest/index.js';
import { alive, pidsWithCmdline } from '../kit/index.mjs';
import { makeDataDir, serialLog, TestServer, waitFor } from './harness.js';
import { Netns, portInNamespace } from './netns.js';

const root = typeof process.getuid === 'function' && process.getuid() === 0;

const SUBNET = '10.99.0.0/24';
const BR_ADDR = '10.77.0.1';
const BR_POOL = { from: 50, to: 99 };

let ns: Netns;
let server: TestServer;
let tmp: string;
let testDnsmasq: { pid: number; kill: () => void } | null = null;
/** /dev/net/tun's mode before the run (the server opens it to QEMU's users; the host gets it back as it was). */
let tunMode: number | null = null;
const open: WebSocket[] = [];

interface Guest {
  id: string;
  name: string;
  mac: string;
  ip: string | null;
  viewer: Viewer;
}
const guests: Record<'a' | 'b' | 'c', Guest> = {} as Record<'a' | 'b' | 'c', Guest>;
let tnat: any;
let tbr: any;

// ---------------------------------------------------------------------------------------------
// helpers

async function api<T = any>(method: string, p: string, body?: unknown) {
  return server.api<T>(method, p, body);
}

/** The CLI (in this process) against the server in the namespace. */
async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s), err: (s) => (err += s), env: { QM_URL: server.url, QM_TOKEN: '' }, home: tmp, isTTY: false };
  const code = await run(args, io);
  return { code, out, err };
}
async function cliJson(args: string[]): Promise<any> {
  const r = await cli([...args, '--json']);
  expect(r, r.err).toMatchObject({ code: 0 });
  return JSON.parse(r.out);
}

/** A serial console viewer: everything it received since it opened. */
interface Viewer {
  ws: WebSocket;
  text(): string;
}
async function viewer(vmId: string): Promise<Viewer> {
  const t = await api('POST', `/vms/${vmId}/console`, { kind: 'serial' });
  expect(t.status, JSON.stringify(t.body)).toBe(200);
  const ws = new WebSocket(`${server.url.replace(/^http/, 'ws')}/api/vms/${vmId}/serial?ticket=${t.body.ticket}`);
  open.push(ws);
  let kept = '';
  ws.on('message', (d: Buffer) => {
    kept += d.toString('latin1');
    if (kept.length > 512 * 1024) kept = kept.slice(-256 * 1024);
  });
  ws.on('error', () => undefined);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('unexpected-response', (_req, res) => reject(new Error(`serial WebSocket refused: ${res.statusCode}`)));
  });
  return { ws, text: () => kept };
}

let seq = 0;
/**
 * Types a shell line into the guest's serial console and resolves with the output up to its end
 * marker (computed by the guest shell, so the echoed input never matches it).
 */
async function shell(g: Guest, line: string, timeoutMs = 30_000): Promise<string> {
  const n = ++seq;
  const end = `QMT_${n * 7}_END`;
  const from = g.viewer.text().length;
  g.viewer.ws.send(`${line}; echo QMT_$((${n}*7))_END\r`);
  const out = await waitFor(
    () => {
      const t = g.viewer.text().slice(from);
      const i = t.indexOf(end);
      return i >= 0 ? t.slice(0, i) : null;
    },
    timeoutMs,
    `${end} from ${g.name} (${line})`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; console:\n${g.viewer.text().slice(-2000)}`);
  });
  return out;
}

/** Waits for `TESTGUEST IP <if> <ip>` in the VM's serial log after `from` characters; returns [if, ip]. */
async function ipLine(g: Guest, ip: RegExp | string, from = 0, timeoutMs = 60_000): Promise<[string, string]> {
  const re = new RegExp(`TESTGUEST IP (\\S+) (${typeof ip === 'string' ? ip.replace(/\./g, '\\.') : ip.source})\\b`);
  return waitFor(
    () => {
      const m = re.exec(serialLog(server.dataDir, g.id).slice(from));
      return m ? ([m[1], m[2]] as [string, string]) : null;
    },
    timeoutMs,
    `TESTGUEST IP ${String(ip)} from ${g.name}`,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; serial log:\n${serialLog(server.dataDir, g.id).slice(-3000)}\nserver log:\n${server.log.slice(-3000)}`);
  });
}

/** Through a forward: what a process in the namespace gets from 127.0.0.1:<port>. */
const viaForward = (port: number) => ns.fetchInside(`http://127.0.0.1:${port}/`);
const marker = (mac: string) => `TESTGUEST_HTTP ${mac.toLowerCase()}`;

/** Waits until a fetch through the forward answers with the guest's marker (the guest's httpd may still be starting). */
async function fetchesMarker(port: number, g: Guest): Promise<void> {
  let last: unknown = null;
  await waitFor(
    async () => {
      last = await viaForward(port);
      return (last as { ok: boolean; text?: string }).ok && (last as { text: string }).text.includes(marker(g.mac));
    },
    45_000,
    `${marker(g.mac)} through 127.0.0.1:${port}`,
    500,
  ).catch((err: Error) => {
    throw new Error(`${err.message}; last answer ${JSON.stringify(last)}; server log:\n${server.log.slice(-2000)}`);
  });
}

/** What the server changed on the host, as a comparable value: links (with masters), nftables ruleset, dnsmasq processes, run/net files. */
function hostState() {
  let files: string[] = [];
  try {
    files = fs.readdirSync(path.join(server.dataDir, 'run', 'net')).sort();
  } catch {
    /* none yet */
  }
  return {
    links: ns
      .links()
      .map((l) => `${l.name}${l.master ? `@${l.master}` : ''}`)
      .sort(),
    ruleset: ns.ruleset(),
    dnsmasq: ns.pidsOf('dnsmasq').sort((x, y) => x - y),
    files,
  };
}

/** The v1 error shape with this status and code. */
function expectError(r: { status: number; body: any }, status: number, code?: string) {
  expect(r.status, JSON.stringify(r.body)).toBe(status);
  expect(typeof r.body.error).toBe('string');
  expect(r.body.error.length).toBeGreaterThan(0);
  expect(typeof r.body.timestamp).toBe('string');
  if (code) expect(r.body.code).toBe(code);
  else expect(typeof r.body.code).toBe('string');
}

async function makeGuest(key: 'a' | 'b' | 'c', network: string | undefined, isoPath: string): Promise<void> {
  const made = await api('POST', '/vms', { name: `net-${key}`, cpus: 1, memory: 160, ...(network ? { network } : {}) });
  expect(made.status, JSON.stringify(made.body)).toBeLessThan(300);
  const vm = made.body.vm;
  expect(vm.nics).toHaveLength(1);
  expect((await api('POST', `/vms/${vm.id}/iso/mount`, { isoPath })).status).toBe(200);
  guests[key] = { id: vm.id, name: vm.name, mac: vm.nics[0].mac, ip: vm.nics[0].ip, viewer: null as unknown as Viewer };
}

// ---------------------------------------------------------------------------------------------

describe.runIf(root)('networks on real QEMU, bridges, dnsmasq and nftables (in a network namespace)', () => {
  beforeAll(async () => {
    const iso = await ensureTestGuestIso();
    tunMode = fs.statSync('/dev/net/tun').mode & 0o7777;
    ns = Netns.create();
    tmp = fs.mkdtempSync(path.join(process.env.TMPDIR ?? '/tmp', 'qm-net-real-'));
    // The test's own LAN: a bridge with an address and a dnsmasq of the test's (pid and leases in tmp).
    ns.exec('ip', 'link', 'add', 'br-t', 'type', 'bridge');
    ns.exec('ip', 'addr', 'add', `${BR_ADDR}/24`, 'dev', 'br-t');
    ns.exec('ip', 'link', 'set', 'br-t', 'up');
    ns.exec('ip', 'link', 'add', 'dm-t', 'type', 'veth', 'peer', 'name', 'dm-t2'); // interfaces that are not bridges
    const child = await ns.spawn(
      [
        'dnsmasq',
        '--keep-in-foreground',
        '--conf-file=/dev/null',
        '--port=0',
        '--bind-interfaces',
        '--interface=br-t',
        '--except-interface=lo',
        `--listen-address=${BR_ADDR}`,
        `--dhcp-range=10.77.0.${BR_POOL.from},10.77.0.${BR_POOL.to},255.255.255.0,1h`,
        `--dhcp-leasefile=${path.join(tmp, 'br-t.leases')}`,
        `--pid-file=${path.join(tmp, 'br-t.pid')}`,
        '--user=root',
        '--log-facility=-',
      ],
      'started',
    );
    testDnsmasq = { pid: child.pid!, kill: () => child.kill('SIGKILL') };

    const port = portInNamespace();
    server = new TestServer(makeDataDir(), {}, { wrap: ns.wrap, port, url: await ns.relayTo(port) });
    await server.start();
    const isoPath = path.join(server.dataDir, 'isos', 'testguest.iso');
    fs.copyFileSync(iso, isoPath);

    const list = await api('GET', '/networks');
    expect(list.status).toBe(200);
    expect(list.body.managed, JSON.stringify(list.body)).toMatchObject({ available: true, reason: null });
    const n1 = await api('POST', '/networks', { name: 'tnat', type: 'nat', subnet: SUBNET });
    expect(n1.status, JSON.stringify(n1.body)).toBe(201);
    tnat = n1.body.network ?? n1.body;
    const n2 = await api('POST', '/networks', { name: 'tbr', type: 'bridge', bridge: 'br-t' });
    expect(n2.status, JSON.stringify(n2.body)).toBe(201);
    tbr = n2.body.network ?? n2.body;

    await makeGuest('a', 'tnat', isoPath);
    await makeGuest('b', 'tnat', isoPath);
    await makeGuest('c', undefined, isoPath);
    for (const g of Object.values(guests)) {
      const started = await api('POST', `/vms/${g.id}/start`);
      expect(started.status, JSON.stringify(started.body) + server.log.slice(-2000)).toBe(200);
      g.viewer = await viewer(g.id);
    }
    await Promise.all(
      Object.values(guests).map((g) =>
        waitFor(() => serialLog(server.dataDir, g.id).includes(READY_MARKER), 120_000, `${g.name} READY`).catch((err: Error) => {
          throw new Error(`${err.message}; serial log:\n${serialLog(server.dataDir, g.id).slice(-3000)}`);
        }),
      ),
    );
  }, 240_000);

  afterAll(async () => {
    for (const ws of open) ws.terminate();
    testDnsmasq?.kill();
    if (server) {
      await server.dispose({ keepDir: true }).catch(() => undefined);
      // A run that failed midway: the server's dnsmasq processes (named by their pid files in the data dir), by pid.
      for (const p of pidsWithCmdline(server.dataDir)) if (alive(p.pid) && path.basename(p.argv[0] ?? '') === 'dnsmasq') process.kill(p.pid, 'SIGKILL');
      await server.dispose();
    }
    await ns?.delete();
    if (tmp) fs.rmSync(tmp, { recursive: true, force: true });
    if (tunMode !== null && (fs.statSync('/dev/net/tun').mode & 0o7777) !== tunMode) fs.chmodSync('/dev/net/tun', tunMode);
  });

  it('two VMs on one nat network get their fixed addresses by DHCP, are listed with them, and reach each other', async () => {
    const { a, b } = guests;
    expect(a.ip).toMatch(/^10\.99\.0\.\d+$/);
    expect(b.ip).toMatch(/^10\.99\.0\.\d+$/);
    expect(a.ip).not.toBe(b.ip);
    expect(tnat).toMatchObject({ name: 'tnat', type: 'nat', bridge: 'qm-tnat', subnet: SUBNET, gateway: '10.99.0.1' });
    await ipLine(a, a.ip!);
    await ipLine(b, b.ip!);

    // Listed: the network's leases and VMs, the VMs' addresses (the server reads the lease file every few seconds).
    await waitFor(
      async () => {
        const n = (await api('GET', '/networks')).body.networks.find((x: any) => x.id === tnat.id);
        const leases = n.leases.map((l: any) => `${l.mac.toLowerCase()} ${l.ip}`);
        return leases.includes(`${a.mac.toLowerCase()} ${a.ip}`) && leases.includes(`${b.mac.toLowerCase()} ${b.ip}`);
      },
      30_000,
      'both leases in GET /api/networks',
      500,
    );
    const n = (await api('GET', '/networks')).body.networks.find((x: any) => x.id === tnat.id);
    expect([...n.vms].sort()).toEqual([a.id, b.id].sort());
    for (const g of [a, b]) {
      const vm = await waitFor(
        async () => {
          const v = (await api('GET', `/vms/${g.id}`)).body.vm;
          return v.addresses.some((x: any) => x.ip === g.ip && x.source === 'dhcp') ? v : null;
        },
        30_000,
        `${g.name}'s dhcp address`,
        500,
      );
      expect(vm.addresses).toContainEqual({ nic: vm.nics[0].id, mac: vm.nics[0].mac, ip: g.ip, source: 'dhcp' });
    }
    // The CLI shows them too.
    const ls = await cli(['network', 'ls']);
    expect(ls.code, ls.err).toBe(0);
    expect(ls.out).toMatch(/^tnat\s+nat\s+qm-tnat\s+10\.99\.0\.0\/24\s+10\.99\.0\.1\s+\S+\s+2\s+2\s/m);
    expect(ls.out).toMatch(/^tbr\s+bridge\s+br-t\s/m);
    const show = await cli(['vm', 'show', a.name]);
    expect(show.out).toContain(`${a.ip} (dhcp`);

    // A fetches B's marker over HTTP (typed into A's serial console; the answer is in A's serial log).
    let out = '';
    // (busybox nc: the static busybox's wget crashes in this guest)
    for (let i = 0; i < 3 && !out.includes(marker(b.mac)); i++) out = await shell(a, `printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 5 ${b.ip} 80`);
    expect(out).toContain(marker(b.mac));
    await waitFor(() => serialLog(server.dataDir, a.id).includes(marker(b.mac)), 10_000, "B's marker in A's serial log");
    expect((await api('GET', `/vms/${a.id}/serial/log?tail=200`)).body).toContain(marker(b.mac));
  }, 150_000);

  it('a port forward added live to a running VM answers on 127.0.0.1:<hostPort>, and the port closes when it is removed live (user NIC, then nat)', async () => {
    const { b, c } = guests;
    // user NIC (C), through the CLI
    const p1 = portInNamespace();
    const added = await cliJson(['vm', 'forward', 'add', c.name, String(p1), '80']);
    expect(added.forward).toMatchObject({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: p1, guestPort: 80 });
    await fetchesMarker(p1, c);
    const ls = await cliJson(['vm', 'forward', 'ls', c.name]);
    expect(ls.forwards.map((f: any) => f.id)).toEqual([added.forward.id]);
    expect((await cli(['vm', 'forward', 'rm', c.name, String(p1)])).code).toBe(0);
    expect(await viaForward(p1)).toEqual({ ok: false, error: 'ECONNREFUSED' });
    expect((await api('GET', `/vms/${c.id}/forwards`)).body.forwards).toEqual([]);

    // nat network (B): DNAT to its fixed address
    const p2 = portInNamespace();
    const f = await api('POST', `/vms/${b.id}/forwards`, { protocol: 'tcp', hostPort: p2, guestPort: 80 });
    expect(f.status, JSON.stringify(f.body)).toBe(201);
    const fwd = f.body.forward ?? f.body;
    expect(fwd).toMatchObject({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: p2, guestPort: 80 });
    expect(ns.exec('nft', 'list', 'table', 'inet', 'qemu_manager')).toContain(`${b.ip}`);
    await fetchesMarker(p2, b);
    const del = await api('DELETE', `/vms/${b.id}/forwards/${fwd.id}`);
    expect(del.status, JSON.stringify(del.body)).toBeLessThan(300);
    expect(await viaForward(p2)).toEqual({ ok: false, error: 'ECONNREFUSED' });
    expect(ns.exec('nft', 'list', 'table', 'inet', 'qemu_manager')).not.toContain(`${p2}`);
  }, 120_000);

  it('hot-plug: a NIC added to a running VM gets its address in the guest; removed, the device is gone', async () => {
    const { c } = guests;
    const from = serialLog(server.dataDir, c.id).length;
    const added = await cliJson(['vm', 'nic', 'add', c.name, '--network', 'tnat', '--model', 'e1000e']);
    const nic = added.nic;
    expect(nic).toMatchObject({ network: tnat.id, model: 'e1000e', slot: 1 });
    expect(nic.ip).toMatch(/^10\.99\.0\.\d+$/);
    const [ifname] = await ipLine(c, nic.ip, from);
    expect(await shell(c, 'ls /sys/class/net')).toContain(ifname);
    expect((await api('GET', `/vms/${c.id}`)).body.vm.nics.map((x: any) => x.slot)).toEqual([0, 1]);

    const rm = await cli(['vm', 'nic', 'rm', c.name, String(nic.slot)]);
    expect(rm.code, rm.err).toBe(0);
    await waitFor(async () => !(await shell(c, 'ls /sys/class/net')).includes(ifname), 30_000, `${ifname} gone from the guest`, 500);
    expect((await api('GET', `/vms/${c.id}/nics`)).body.nics.map((x: any) => x.id)).not.toContain(nic.id);
    expect(ns.links().map((l) => l.name)).not.toContain(`qm-${crypto.createHash('sha256').update(c.id).digest('hex').slice(0, 8)}.1`); // the tap (runtime/port.ts tapName)
  }, 120_000);

  it('a bridge network on a bridge the test made: a hot-plugged NIC on it gets an address from the dnsmasq the test runs there', async () => {
    const { c } = guests;
    expect(tbr).toMatchObject({ name: 'tbr', type: 'bridge', bridge: 'br-t', subnet: null, dhcp: null });
    const from = serialLog(server.dataDir, c.id).length;
    const r = await api('POST', `/vms/${c.id}/nics`, { network: 'tbr', model: 'rtl8139' });
    expect(r.status, JSON.stringify(r.body)).toBe(201);
    const nic = r.body.nic ?? r.body;
    expect(nic).toMatchObject({ network: tbr.id, model: 'rtl8139', ip: null });
    const [, ip] = await ipLine(c, /10\.77\.0\.\d+/, from);
    const last = Number(ip.split('.')[3]);
    expect(last).toBeGreaterThanOrEqual(BR_POOL.from);
    expect(last).toBeLessThanOrEqual(BR_POOL.to);
    // The tap is a port of the test's bridge, and the test's dnsmasq gave the lease.
    const tap = ns.links().find((l) => l.master === 'br-t' && l.name.startsWith('qm-'));
    expect(tap, JSON.stringify(ns.links())).toBeDefined();
    expect(fs.readFileSync(path.join(tmp, 'br-t.leases'), 'utf8').toLowerCase()).toContain(nic.mac.toLowerCase());
    expect((await api('GET', '/networks')).body.networks.find((x: any) => x.id === tbr.id).vms).toEqual([c.id]);
  }, 120_000);

  it('bad input: a clear 4xx and nothing changed on the host (links, nftables ruleset, dnsmasq processes, run files) or in the lists', async () => {
    // A VM on no network at all (its only NIC removed while stopped).
    const d = (await api('POST', '/vms', { name: 'net-none', cpus: 1, memory: 64 })).body.vm;
    expect((await api('DELETE', `/vms/${d.id}/nics/${d.nics[0].id}`)).status).toBeLessThan(300);
    const c = (await api('GET', `/vms/${guests.c.id}`)).body.vm;
    const bridgeNic = c.nics.find((x: any) => x.network === tbr.id);
    expect(bridgeNic).toBeDefined();

    const before = hostState();
    expect(before.links).toContain('qm-tnat');
    expect(before.dnsmasq.length).toBeGreaterThanOrEqual(2); // ours and the test's
    const lists = async () => ({
      networks: (await api('GET', '/networks')).body.networks.map((n: any) => n.id).sort(),
      forwards: await Promise.all(Object.values(guests).map(async (g) => (await api('GET', `/vms/${g.id}/forwards`)).body.forwards.length)),
      nics: await Promise.all([...Object.values(guests), d].map(async (g) => (await api('GET', `/vms/${g.id}/nics`)).body.nics.length)),
    });
    const listsBefore = await lists();

    const cases: Array<[string, string, unknown, number, string?]> = [
      // overlapping subnets: another network's, a part of it, a host route's (br-t), user-mode's
      ['POST', '/networks', { name: 'tover', type: 'nat', subnet: SUBNET }, 409, 'NETWORK_CONFLICT'],
      ['POST', '/networks', { name: 'tover', type: 'isolated', subnet: '10.99.0.128/25' }, 409, 'NETWORK_CONFLICT'],
      ['POST', '/networks', { name: 'tover', type: 'nat', subnet: '10.99.0.0/16' }, 409, 'NETWORK_CONFLICT'],
      ['POST', '/networks', { name: 'tover', type: 'nat', subnet: '10.77.0.0/24' }, 409, 'NETWORK_CONFLICT'],
      ['POST', '/networks', { name: 'tover', type: 'nat', subnet: '10.0.2.0/24' }, 409, 'NETWORK_CONFLICT'],
      // a bridge that is not a bridge, one that does not exist
      ['POST', '/networks', { name: 'tbad', type: 'bridge', bridge: 'dm-t' }, 422, 'BRIDGE_INVALID'],
      ['POST', '/networks', { name: 'tbad', type: 'bridge', bridge: 'nosuchbr0' }, 422, 'BRIDGE_INVALID'],
      // names with shell or nftables syntax
      ['POST', '/networks', { name: 'x;reboot', type: 'nat' }, 400, 'VALIDATION'],
      ['POST', '/networks', { name: 'a$(id)', type: 'nat' }, 400, 'VALIDATION'],
      ['POST', '/networks', { name: 'n"}', type: 'isolated' }, 400, 'VALIDATION'],
      ['POST', '/networks', { name: 't { flush }', type: 'nat' }, 400, 'VALIDATION'],
      ['POST', '/networks', { name: 'tbad', type: 'bridge', bridge: 'br-t;id' }, 400, 'VALIDATION'],
      ['POST', '/networks', { name: 'tbad', type: 'bridge', bridge: 'br-t" }; flush ruleset' }, 400, 'VALIDATION'],
      ['POST', '/networks', { name: 'tover', type: 'nat', subnet: '10.98.0.0/24; drop' }, 400, 'VALIDATION'],
      // ports 0 and 65536
      ['POST', `/vms/${guests.b.id}/forwards`, { protocol: 'tcp', hostPort: 0, guestPort: 80 }, 400, 'VALIDATION'],
      ['POST', `/vms/${guests.b.id}/forwards`, { protocol: 'tcp', hostPort: 65536, guestPort: 80 }, 400, 'VALIDATION'],
      ['POST', `/vms/${guests.c.id}/forwards`, { protocol: 'udp', hostPort: 40000, guestPort: 0 }, 400, 'VALIDATION'],
      ['POST', `/vms/${guests.c.id}/forwards`, { protocol: 'tcp', hostPort: 40001, guestPort: 65536 }, 400, 'VALIDATION'],
      // a forward to a VM on no network, and to a NIC on a bridge network
      ['POST', `/vms/${d.id}/forwards`, { protocol: 'tcp', hostPort: 40002, guestPort: 22 }, 422, 'FORWARD_UNSUPPORTED'],
      ['POST', `/vms/${guests.c.id}/forwards`, { protocol: 'tcp', hostPort: 40003, guestPort: 22, nic: bridgeNic.id }, 422, 'FORWARD_UNSUPPORTED'],
    ];
    for (const [method, p, body, status, code] of cases) {
      const r = await api(method, p, body);
      expectError(r, status, code);
      expect(hostState(), `${method} ${p} ${JSON.stringify(body)}`).toEqual(before);
    }
    expect(await lists()).toEqual(listsBefore);
    // The CLI refuses bad ports itself (usage, exit 2) and passes the API's refusals on (exit 1 with the code).
    expect((await cli(['vm', 'forward', 'add', guests.b.name, '0', '80'])).code).toBe(2);
    expect((await cli(['vm', 'forward', 'add', guests.b.name, '65536', '80'])).code).toBe(2);
    const refused = await cli(['network', 'create', 'tover', '--type', 'nat', '--subnet', SUBNET]);
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('(NETWORK_CONFLICT)');
    const noNet = await cli(['vm', 'forward', 'add', d.name, '40004', '22']);
    expect(noNet.code).toBe(1);
    expect(noNet.err).toContain('(FORWARD_UNSUPPORTED)');
    expect(hostState()).toEqual(before);
    expect((await api('DELETE', `/vms/${d.id}`)).status).toBeLessThan(300);
  }, 60_000);

  it('after a SIGKILL of the server with networks up, a restart finds the networks, leases, forwards and VMs as before (the forwards still work); deleting everything leaves no qm- link, no table, no dnsmasq', async () => {
    const { a, c } = guests;
    // Forwards that stay across the restart: nat (A) and user (C).
    const pa = portInNamespace();
    const pc = portInNamespace() + 1;
    for (const [g, p] of [[a, pa], [c, pc]] as const) {
      const r = await api('POST', `/vms/${g.id}/forwards`, { protocol: 'tcp', hostPort: p, guestPort: 80 });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      await fetchesMarker(p, g);
    }
    // (the guest agent's addresses are left out: they are what the guest reports now, read every few seconds)
    const snapshot = async () => {
      const networks = (await api('GET', '/networks')).body.networks.map((n: any) => ({
        ...n,
        leases: n.leases.map((l: any) => `${l.mac.toLowerCase()} ${l.ip}`).sort(),
        vms: [...n.vms].sort(),
      }));
      const vms = (await api('GET', '/vms')).body.vms
        .map((v: any) => ({ id: v.id, status: v.status, pid: v.pid, nics: v.nics, addresses: v.addresses.filter((x: any) => x.source !== 'agent').sort((x: any, y: any) => (x.ip < y.ip ? -1 : 1)) }))
        .sort((x: any, y: any) => (x.id < y.id ? -1 : 1));
      const forwards = await Promise.all(Object.values(guests).map(async (g) => (await api('GET', `/vms/${g.id}/forwards`)).body.forwards));
      return { networks, vms, forwards };
    };
    const before = await snapshot();
    const hostBefore = hostState();
    const pidFile = path.join(server.dataDir, 'run', 'net', `${tnat.id}.pid`);
    const dnsmasqPid = Number(fs.readFileSync(pidFile, 'utf8').trim());
    expect(alive(dnsmasqPid)).toBe(true);

    await server.kill('SIGKILL');
    await server.start();
    const after = await snapshot();
    expect(after).toEqual(before);
    expect(after.vms.every((v: any) => v.status === 'running')).toBe(true);
    expect(hostState()).toEqual(hostBefore); // the same links, rules and dnsmasq (adopted, not restarted)
    expect(Number(fs.readFileSync(pidFile, 'utf8').trim())).toBe(dnsmasqPid);
    await fetchesMarker(pa, a);
    await fetchesMarker(pc, c);

    // Delete everything: VMs (running: forced), then the networks (the CLI).
    for (const g of Object.values(guests)) expect((await api('DELETE', `/vms/${g.id}?force=true`)).status).toBeLessThan(300);
    for (const name of ['tnat', 'tbr']) {
      const r = await cli(['network', 'rm', name]);
      expect(r.code, r.err).toBe(0);
    }
    expect((await api('GET', '/networks')).body.networks.map((n: any) => n.id)).toEqual(['user']);
    expect(alive(dnsmasqPid)).toBe(false);
    expect(await viaForward(pa)).toEqual({ ok: false, error: 'ECONNREFUSED' });
    testDnsmasq?.kill(); // the test's own, so that none is left to tell apart
    testDnsmasq = null;
    for (const ws of open) ws.terminate();
    await server.dispose({ keepDir: true }); // SIGTERM: the server stops
    await waitFor(() => ns.pidsOf('dnsmasq').length === 0, 10_000, 'no dnsmasq in the namespace');
    expect(ns.links().filter((l) => l.name.startsWith('qm-'))).toEqual([]);
    // Nothing is left in nftables either: the guest isolation's uids are of users nothing runs as
    // now, so the table goes with the server's stop.
    expect(ns.exec('nft', 'list', 'tables')).not.toMatch(/table inet qemu_manager/);
    expect(ns.pidsOf('dnsmasq')).toEqual([]);
    expect(ns.pidsOf('qemu-system-x86_64')).toEqual([]);
  }, 150_000);
});
