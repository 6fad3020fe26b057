/**
 * The CLI's network commands (issue 11) against the real server in this process (buildApp on a
 * loopback port, fake hypervisor and fake host network stack): `network ls|show|create|rm`,
 * `vm nic ls|add|set|rm`, `vm forward ls|add|rm`, `vm create --network`; --json output checked
 * against the contract's schemas, names resolved to ids, exit statuses (0, 1 API error, 2 usage).
 * Against real bridges, dnsmasq and QEMU: test/integration/networks-real.test.ts.
 */
import { Forward, ForwardList, MessageBody, Network, NetworkList, Nic, NicList, VmEnvelope } from '@qemu-manager/contract';
import { Type } from '@sinclair/typebox';
import fs from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run, type Io } from '../../packages/cli/src/program.js';
import { waitFor } from '../kit/index.mjs';
import { makeTempDir, startInProcess, type InProcessServer } from './app.js';
import { expectShape } from './check.js';

let srv: InProcessServer;
let url: string;
let home: string;

async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s), err: (s) => (err += s), env: { QM_URL: url }, home, isTTY: false };
  const code = await run(args, io);
  return { code, out, err };
}
async function json(args: string[]): Promise<any> {
  const r = await cli([...args, '--json']);
  expect(r, r.err).toMatchObject({ code: 0 });
  return JSON.parse(r.out);
}

beforeAll(async () => {
  srv = await startInProcess();
  await srv.app.listen({ host: '127.0.0.1', port: 0 });
  const addr = srv.app.server.address();
  if (typeof addr !== 'object' || addr === null) throw new Error('no address');
  url = `http://127.0.0.1:${addr.port}`;
  home = makeTempDir('qm-cli-net-home-');
});

afterAll(async () => {
  await srv?.close();
  if (home) fs.rmSync(home, { recursive: true, force: true });
});

describe('qemu-manager network, vm nic, vm forward', () => {
  it('network create (nat, isolated without DHCP, bridge), ls, show with leases, rm; usage and API errors', async () => {
    const nat = await json(['network', 'create', 'lab', '--type', 'nat', '--subnet', '10.50.0.0/24', '--dhcp', '10.50.0.10-10.50.0.20']);
    expectShape(Type.Object({ network: Network }), nat);
    expect(nat.network).toMatchObject({ name: 'lab', type: 'nat', bridge: 'qm-lab', subnet: '10.50.0.0/24', gateway: '10.50.0.1', dhcp: { start: '10.50.0.10', end: '10.50.0.20' } });
    const iso = await json(['network', 'create', 'quiet', '--type', 'isolated', '--subnet', '10.51.0.0/24', '--no-dhcp']);
    expect(iso.network).toMatchObject({ type: 'isolated', dhcp: null });
    const br = await json(['network', 'create', 'lan', '--type', 'bridge', '--bridge', 'br0']);
    expect(br.network).toMatchObject({ type: 'bridge', bridge: 'br0', subnet: null });

    const list = await json(['network', 'ls']);
    expectShape(NetworkList, list);
    expect(list.networks.map((n: any) => n.name)).toEqual(['user', 'lab', 'quiet', 'lan']);
    const human = await cli(['network', 'ls']);
    expect(human.out.split('\n')[0]).toMatch(/^NAME\s+TYPE\s+BRIDGE\s+SUBNET\s+GATEWAY\s+DHCP\s+LEASES\s+VMS\s+ID$/);
    expect(human.out).toMatch(/^lab\s+nat\s+qm-lab\s+10\.50\.0\.0\/24\s+10\.50\.0\.1\s+10\.50\.0\.10-10\.50\.0\.20\s+0\s+0\s+\S+$/m);
    expect(human.out).toMatch(/^user\s+user\s+-\s/m);

    srv.hostNet.leaseTable.set(nat.network.id, [{ mac: '52:54:00:aa:bb:cc', ip: '10.50.0.11', hostname: 'guest1', expiresAt: null }]);
    // The server reads the leases every few seconds.
    const shown = await waitFor(async () => {
      const r = await cli(['network', 'show', 'lab']);
      return r.code === 0 && r.out.includes('52:54:00:aa:bb:cc') ? r : null;
    }, 15_000, 'the lease in network show', 250);
    expect(shown.out).toMatch(/^52:54:00:aa:bb:cc\s+10\.50\.0\.11\s+guest1\s+never$/m);
    expect((await json(['network', 'show', nat.network.id])).network.id).toBe(nat.network.id);

    // usage errors (exit 2): no --type, bridge without --bridge, a bridge with a subnet, a bad range, an unknown network
    expect((await cli(['network', 'create', 'x'])).code).toBe(2);
    expect((await cli(['network', 'create', 'x', '--type', 'bridge'])).code).toBe(2);
    expect((await cli(['network', 'create', 'x', '--type', 'bridge', '--bridge', 'br0', '--subnet', '10.52.0.0/24'])).code).toBe(2);
    expect((await cli(['network', 'create', 'x', '--type', 'nat', '--dhcp', '10.52.0.9'])).code).toBe(2);
    expect((await cli(['network', 'rm', 'nosuch'])).code).toBe(2);
    // API errors (exit 1 with the code)
    const overlap = await cli(['network', 'create', 'lab2', '--type', 'nat', '--subnet', '10.50.0.0/25']);
    expect(overlap.code).toBe(1);
    expect(overlap.err).toContain('(NETWORK_CONFLICT)');
    const notBridge = await cli(['network', 'create', 'lan2', '--type', 'bridge', '--bridge', 'eth9']);
    expect(notBridge.code).toBe(1);
    expect(notBridge.err).toContain('(BRIDGE_INVALID)');
    const badName = await cli(['network', 'create', 'a;b', '--type', 'nat']);
    expect(badName.code).toBe(1);
    expect(badName.err).toContain('(VALIDATION)');

    expectShape(MessageBody, await json(['network', 'rm', 'quiet']));
    expectShape(MessageBody, await json(['network', 'rm', 'lan']));
    expect((await json(['network', 'ls'])).networks.map((n: any) => n.name)).toEqual(['user', 'lab']);
  });

  it('vm create --network, vm nic ls/add/set/rm by slot and MAC, vm show lists NICs and addresses; a network in use is refused', async () => {
    const made = await json(['vm', 'create', 'netvm', '--cpus', '1', '--memory', '64', '--network', 'lab']);
    expectShape(VmEnvelope, made);
    const vm = made.vm;
    expect(vm.nics).toHaveLength(1);
    const lab = (await json(['network', 'ls'])).networks.find((n: any) => n.name === 'lab');
    expect(vm.nics[0]).toMatchObject({ network: lab.id, slot: 0, model: 'virtio' });
    expect(vm.nics[0].ip).toMatch(/^10\.50\.0\.(1\d|20)$/);

    const added = await json(['vm', 'nic', 'add', 'netvm', '--network', 'user', '--model', 'e1000e', '--mac', '52:54:00:12:34:56']);
    expectShape(Type.Object({ nic: Nic }), added);
    expect(added.nic).toMatchObject({ network: 'user', model: 'e1000e', mac: '52:54:00:12:34:56', slot: 1 });
    const nics = await json(['vm', 'nic', 'ls', 'netvm']);
    expectShape(NicList, nics);
    expect(nics.nics.map((n: any) => n.slot)).toEqual([0, 1]);
    const human = await cli(['vm', 'nic', 'ls', 'netvm']);
    expect(human.out).toMatch(/^0\s+lab\s+virtio\s+\S+\s+10\.50\.0\.\d+\s+\S+$/m);
    expect(human.out).toMatch(/^1\s+user\s+e1000e\s+52:54:00:12:34:56\s+10\.0\.2\.15\s+\S+$/m);

    const set = await json(['vm', 'nic', 'set', 'netvm', '1', '--model', 'rtl8139']);
    expect(set.nic).toMatchObject({ id: added.nic.id, model: 'rtl8139' });
    const byMac = await json(['vm', 'nic', 'set', 'netvm', '52:54:00:12:34:56', '--mac', '52:54:00:12:34:57']);
    expect(byMac.nic).toMatchObject({ id: added.nic.id, mac: '52:54:00:12:34:57' });
    expect((await cli(['vm', 'nic', 'set', 'netvm', '1'])).code).toBe(2); // nothing to change
    expect((await cli(['vm', 'nic', 'set', 'netvm', '7', '--model', 'virtio'])).code).toBe(2); // no such NIC
    expect((await cli(['vm', 'nic', 'add', 'netvm', '--network', 'user', '--model', 'ne2k'])).code).toBe(2);
    const badMac = await cli(['vm', 'nic', 'add', 'netvm', '--network', 'user', '--mac', '01:00:5e:00:00:01']);
    expect(badMac.code).toBe(1);

    const show = await cli(['vm', 'show', 'netvm']);
    expect(show.out).toMatch(/^nic0\s+virtio \S+ on \S+ \(10\.50\.0\.\d+\)$/m);
    expect(show.out).toMatch(/^nic1\s+rtl8139 52:54:00:12:34:57 on user \(10\.0\.2\.15\)$/m);

    const inUse = await cli(['network', 'rm', 'lab']);
    expect(inUse.code).toBe(1);
    expect(inUse.err).toContain('(NETWORK_IN_USE)');

    expectShape(MessageBody, await json(['vm', 'nic', 'rm', 'netvm', 'nic1']));
    expect((await json(['vm', 'nic', 'ls', vm.id])).nics.map((n: any) => n.slot)).toEqual([0]);
  });

  it('vm forward add/ls/rm (by host port and by id) on a nat and a user NIC; bad ports are usage errors; a VM on no network is refused', async () => {
    const f = await json(['vm', 'forward', 'add', 'netvm', '18080', '80']);
    expectShape(Type.Object({ forward: Forward }), f);
    expect(f.forward).toMatchObject({ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 18080, guestPort: 80 });
    expect(srv.hostNet.rules.forwards).toHaveLength(1);
    const ssh = await cli(['vm', 'forward', 'add', 'netvm', '12222', '22', '--protocol', 'tcp']);
    expect(ssh.code, ssh.err).toBe(0);
    expect(ssh.out).toContain('ssh -p 12222 <user>@127.0.0.1');
    const list = await json(['vm', 'forward', 'ls', 'netvm']);
    expectShape(ForwardList, list);
    expect(list.forwards.map((x: any) => x.hostPort).sort()).toEqual([12222, 18080]);
    const human = await cli(['vm', 'forward', 'ls', 'netvm']);
    expect(human.out).toMatch(/^tcp\s+127\.0\.0\.1:18080\s+80\s+0\s+\S+$/m);

    const taken = await cli(['vm', 'forward', 'add', 'netvm', '18080', '81']);
    expect(taken.code).toBe(1);
    expect(taken.err).toContain('(PORT_IN_USE)');
    for (const bad of [['0', '80'], ['65536', '80'], ['8080', '0'], ['80x', '80']]) expect((await cli(['vm', 'forward', 'add', 'netvm', ...bad])).code).toBe(2);
    expect((await cli(['vm', 'forward', 'rm', 'netvm', '9999'])).code).toBe(2);

    expectShape(MessageBody, await json(['vm', 'forward', 'rm', 'netvm', '18080']));
    expectShape(MessageBody, await json(['vm', 'forward', 'rm', 'netvm', list.forwards.find((x: any) => x.hostPort === 12222).id]));
    expect((await json(['vm', 'forward', 'ls', 'netvm'])).forwards).toEqual([]);
    expect(srv.hostNet.rules.forwards).toEqual([]);

    // A user NIC's forward, to the NIC named by its slot.
    const nic = (await json(['vm', 'nic', 'add', 'netvm', '--network', 'user'])).nic;
    const u = await json(['vm', 'forward', 'add', 'netvm', '18081', '80', '--nic', String(nic.slot), '--protocol', 'udp']);
    expect(u.forward).toMatchObject({ nic: nic.id, protocol: 'udp', hostPort: 18081 });
    expectShape(MessageBody, await json(['vm', 'forward', 'rm', 'netvm', '18081']));

    // A VM with no NIC at all.
    const bare = (await json(['vm', 'create', 'bare', '--cpus', '1', '--memory', '64'])).vm;
    await json(['vm', 'nic', 'rm', 'bare', '0']);
    const none = await cli(['vm', 'forward', 'add', 'bare', '18082', '22']);
    expect(none.code).toBe(1);
    expect(none.err).toContain('(FORWARD_UNSUPPORTED)');
    await json(['vm', 'rm', bare.id]);
    await json(['vm', 'rm', 'netvm']);
    expectShape(MessageBody, await json(['network', 'rm', 'lab']));
  });
});
