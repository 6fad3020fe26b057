/**
 * Networks (issue 11): networks, NICs, port forwards and addresses over the fake hypervisor and
 * the fake host network stack: every route, every refusal (nothing changed after it), the
 * rollbacks (a failing host step leaves no network, a failing hot-plug no NIC), MAC and address
 * allocation, what a start gives the runtime, the restart's reconcile, and migration 015 on a
 * database made before it.
 */
import { Forward, Network, NetworkList, Nic, NicList, ForwardList, VmEnvelope, type Task, type TaskEnvelope, type Vm } from '@qemu-manager/contract';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../packages/server/src/lib/errors.js';
import { tapName } from '../../../packages/server/src/runtime/port.js';
import { openDb } from '../../../packages/server/src/store/sqlite.js';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';
import { FakeHostNetworks } from '../fake-hostnet.js';
import { FakeRuntime } from '../fake-runtime.js';

export function networkSuite(): void {
  describe('networks (issue 11)', () => {
    let s: InProcessServer;
    const vm = async (id: string): Promise<Vm> => ((await s.api('GET', `/vms/${id}`)).body as VmEnvelope).vm;
    const newVm = async (name: string, extra: Record<string, unknown> = {}): Promise<Vm> => {
      const r = await s.api('POST', '/vms', { name, cpus: 1, memory: 64, ...extra });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      return (r.body as VmEnvelope).vm;
    };
    const networks = async (): Promise<NetworkList> => (await s.api('GET', '/networks')).body as NetworkList;
    const nics = async (id: string): Promise<Nic[]> => ((await s.api('GET', `/vms/${id}/nics`)).body as NicList).nics;
    const start = async (id: string) => expect((await s.api('POST', `/vms/${id}/start`)).status).toBe(200);
    const stop = async (id: string) => expect((await s.api('POST', `/vms/${id}/stop`)).status).toBe(200);
    let nat: Network;

    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('GET /networks: the built-in user network first, managed networks offered', async () => {
      const r = await s.api('GET', '/networks');
      expect(r.status).toBe(200);
      expectShape(NetworkList, r.body);
      const list = r.body as NetworkList;
      expect(list.managed).toEqual({ available: true, reason: null });
      expect(list.networks[0]).toMatchObject({ id: 'user', name: 'user', type: 'user', subnet: '10.0.2.0/24', gateway: '10.0.2.2', bridge: null, dhcp: null, leases: [], createdAt: null });
    });

    it('POST /networks nat: the first free 192.168.N.0/24 (not the host\'s), gateway .1, pool .2 – .254; up and in the rules before it is recorded', async () => {
      const r = await s.api('POST', '/networks', { name: 'lab', type: 'nat' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(Network, r.body);
      nat = r.body as Network;
      // 192.168.100.0/24 is the host's (the fake's hostSubnets)
      expect(nat).toMatchObject({ name: 'lab', type: 'nat', bridge: 'qm-lab', subnet: '192.168.101.0/24', gateway: '192.168.101.1', dhcp: { start: '192.168.101.2', end: '192.168.101.254' }, vms: [] });
      expect(s.hostNet.upNets.get(nat.id)).toMatchObject({ bridge: 'qm-lab', subnet: '192.168.101.0/24', gateway: '192.168.101.1', type: 'nat' });
      expect(s.hostNet.rules.networks.map((n) => n.id)).toEqual([nat.id]);
      expect((await networks()).networks.map((n) => n.name)).toEqual(['user', 'lab']);
      // the next one skips the subnet taken
      const iso = await s.api('POST', '/networks', { name: 'quiet', type: 'isolated', subnet: '172.30.0.0/24', dhcp: { start: '172.30.0.10', end: '172.30.0.11' } });
      expect(iso.status, JSON.stringify(iso.body)).toBe(201);
      expect(iso.body).toMatchObject({ type: 'isolated', subnet: '172.30.0.0/24', gateway: '172.30.0.1', dhcp: { start: '172.30.0.10', end: '172.30.0.11' } });
      const bridge = await s.api('POST', '/networks', { name: 'lan', type: 'bridge', bridge: 'br0' });
      expect(bridge.status, JSON.stringify(bridge.body)).toBe(201);
      expect(bridge.body).toMatchObject({ type: 'bridge', bridge: 'br0', subnet: null, gateway: null, dhcp: null });
      const nodhcp = await s.api('POST', '/networks', { name: 'nodhcp', type: 'nat', dhcp: null });
      expect(nodhcp.status).toBe(201);
      expect(nodhcp.body).toMatchObject({ subnet: '192.168.102.0/24', dhcp: null });
    });

    it('POST /networks refusals: overlap, bad pool, not a bridge, a taken name, bad names; nothing on the host, nothing recorded', async () => {
      const before = (await networks()).networks.length;
      const ups = s.hostNet.count('up');
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '192.168.101.128/25' }), 'NETWORK_CONFLICT', 409, /overlaps the network lab/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '192.168.100.0/24' }), 'NETWORK_CONFLICT', 409, /this host already uses/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '10.0.0.0/16' }), 'NETWORK_CONFLICT', 409, /user network/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '172.31.0.0/24', dhcp: { start: '172.31.1.2', end: '172.31.1.9' } }), 'VALIDATION', 400, /must lie inside/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '172.31.0.0/24', dhcp: { start: '172.31.0.1', end: '172.31.0.9' } }), 'VALIDATION', 400, /gateway/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '172.31.0.0/24', dhcp: { start: '172.31.0.9', end: '172.31.0.3' } }), 'VALIDATION', 400, /after end/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', subnet: '172.31.0.1/24' }), 'VALIDATION', 400, /host bits/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'bridge', bridge: 'eth9' }), 'BRIDGE_INVALID', 422, /not an existing Linux bridge/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'bridge', bridge: 'qm-lab' }), 'BRIDGE_INVALID', 422, /own networks/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'bridge', bridge: 'br0' }), 'NETWORK_CONFLICT', 409, /already the network lan/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'bridge' }), 'VALIDATION', 400, /needs "bridge"/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'bridge', bridge: 'br0', subnet: '172.31.0.0/24' }), 'VALIDATION', 400, /no "subnet"/);
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'nat', bridge: 'br0' }), 'VALIDATION', 400, /no "bridge"/);
      expectError(await s.api('POST', '/networks', { name: 'lab', type: 'nat' }), 'NAME_TAKEN', 409, /lab already exists/);
      expectError(await s.api('POST', '/networks', { name: 'user', type: 'isolated' }), 'NAME_TAKEN', 409, /user already exists/);
      for (const name of ['Lab', 'a;b', 'x y', 'a"b', 'waytoolongname1', '1abc', 'a}b']) {
        expectError(await s.api('POST', '/networks', { name, type: 'nat' }), 'VALIDATION', 400, /.+/);
      }
      expectError(await s.api('POST', '/networks', { name: 'clash', type: 'bridge', bridge: 'br0;reboot' }), 'VALIDATION', 400, /.+/);
      expect((await networks()).networks.length).toBe(before);
      expect(s.hostNet.count('up')).toBe(ups);
    });

    it('POST /networks: a failing host step is undone (down, rules without it) and nothing is recorded', async () => {
      const before = (await networks()).networks.length;
      const rulesBefore = s.hostNet.rules.networks.map((n) => n.id);
      s.hostNet.failNext('up', new AppError('NETWORK_SETUP_FAILED', 'ip link add qm-broken: Operation not permitted'));
      expectError(await s.api('POST', '/networks', { name: 'broken', type: 'nat' }), 'NETWORK_SETUP_FAILED', 500, /Operation not permitted/);
      expect(s.hostNet.calls.at(-2)?.method).toBe('down');
      expect(s.hostNet.rules.networks.map((n) => n.id)).toEqual(rulesBefore);
      s.hostNet.failNext('applyRules', new AppError('NETWORK_SETUP_FAILED', 'nft: syntax error'));
      expectError(await s.api('POST', '/networks', { name: 'broken', type: 'nat' }), 'NETWORK_SETUP_FAILED', 500, /nft/);
      expect([...s.hostNet.upNets.values()].map((n) => n.name)).not.toContain('broken');
      expect(s.hostNet.rules.networks.map((n) => n.id)).toEqual(rulesBefore);
      expect((await networks()).networks.length).toBe(before);
    });

    it('a new VM has one user NIC (slot 0, its mac); network names the first NIC\'s; MAC and addresses are allocated', async () => {
      const a = await newVm('net-a');
      expect(a.nics).toEqual([{ id: expect.any(String), network: 'user', model: 'virtio', mac: a.mac, ip: '10.0.2.15', slot: 0 }]);
      expect(a.addresses).toEqual([]); // stopped: no user-mode address yet
      const b = await newVm('net-b', { network: 'lab', nicModel: 'e1000e' });
      expect(b.nics).toMatchObject([{ network: nat.id, model: 'e1000e', mac: b.mac, ip: '192.168.101.2', slot: 0 }]);
      expect(s.hostNet.hosts.get(nat.id)).toEqual([{ mac: b.mac, ip: '192.168.101.2' }]);
      expect((await networks()).networks.find((n) => n.id === nat.id)!.vms).toEqual([b.id]);
      expectError(await s.api('POST', '/vms', { name: 'net-x', cpus: 1, memory: 64, network: 'nowhere' }), 'NETWORK_NOT_FOUND', 404, /nowhere/);
      expect((await s.api('GET', '/vms')).body.vms.some((v: Vm) => v.name === 'net-x')).toBe(false);
    });

    it('POST /vms/{id}/nics: next slot, a random or given MAC, a fixed address from the pool; the refusals', async () => {
      const a = await newVm('nic-a');
      const r = await s.api('POST', `/vms/${a.id}/nics`, { network: 'lab', model: 'rtl8139' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(Nic, r.body);
      expect(r.body).toMatchObject({ network: nat.id, model: 'rtl8139', slot: 1, ip: '192.168.101.3' });
      expect((r.body as Nic).mac).toMatch(/^52:54:00:/);
      expect(s.hostNet.hosts.get(nat.id)).toContainEqual({ mac: (r.body as Nic).mac, ip: '192.168.101.3' });
      const given = await s.api('POST', `/vms/${a.id}/nics`, { network: 'user', mac: '02:AA:bb:00:00:01' });
      expect(given.status).toBe(201);
      expect(given.body).toMatchObject({ slot: 2, mac: '02:aa:bb:00:00:01', ip: '10.0.2.15' });
      expect((await vm(a.id)).nics.map((n) => n.slot)).toEqual([0, 1, 2]);
      const listed = await s.api('GET', `/vms/${a.id}/nics`);
      expect(listed.status).toBe(200);
      expectShape(NicList, listed.body);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'user', mac: '02:aa:bb:00:00:01' }), 'MAC_IN_USE', 409, /already used/);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'user', mac: a.mac.toUpperCase() }), 'MAC_IN_USE', 409, /already used/);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'user', mac: '01:00:5e:00:00:01' }), 'VALIDATION', 400, /multicast/);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'user', mac: 'zz' }), 'VALIDATION', 400, /.+/);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'nowhere' }), 'NETWORK_NOT_FOUND', 404, /nowhere/);
      expectError(await s.api('POST', '/vms/nope/nics', { network: 'user' }), 'VM_NOT_FOUND', 404, /not found/);
      // the pool of `quiet` has two addresses
      const q1 = await s.api('POST', `/vms/${a.id}/nics`, { network: 'quiet' });
      const q2 = await s.api('POST', `/vms/${a.id}/nics`, { network: 'quiet' });
      expect([q1.body.ip, q2.body.ip]).toEqual(['172.30.0.10', '172.30.0.11']);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'quiet' }), 'LIMIT_EXCEEDED', 409, /no free address/);
      for (let i = (await nics(a.id)).length; i < 8; i++) expect((await s.api('POST', `/vms/${a.id}/nics`, { network: 'user' })).status).toBe(201);
      expectError(await s.api('POST', `/vms/${a.id}/nics`, { network: 'user' }), 'LIMIT_EXCEEDED', 409, /at most 8 NICs/);
      expect((await nics(a.id)).length).toBe(8);
    });

    it('hot-plug: a NIC added to a running VM goes to the runtime first; a failing plug records nothing', async () => {
      const v = await newVm('hot-a');
      await start(v.id);
      const launched = s.runtime.launches.at(-1)!;
      expect(launched.nics).toEqual([{ slot: 0, model: 'virtio', mac: v.mac, kind: 'user', forwards: [] }]);
      const r = await s.api('POST', `/vms/${v.id}/nics`, { network: 'lab' });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(s.runtime.nicsOf(v.id).get(1)).toMatchObject({ slot: 1, kind: 'bridge', bridge: 'qm-lab', mac: r.body.mac });
      const hostsBefore = s.hostNet.hosts.get(nat.id);
      s.runtime.failNext('attachNic', new AppError('QEMU_ERROR', 'QEMU refused the NIC: Bus full'));
      expectError(await s.api('POST', `/vms/${v.id}/nics`, { network: 'lab' }), 'QEMU_ERROR', 409, /Bus full/);
      expect((await nics(v.id)).length).toBe(2);
      const sorted = (h: Array<{ mac: string; ip: string }> | undefined) => [...(h ?? [])].sort((x, y) => x.ip.localeCompare(y.ip));
      expect(sorted(s.hostNet.hosts.get(nat.id))).toEqual(sorted(hostsBefore));
      // PATCH while running: the model or MAC is refused; the network is unplugged and plugged again
      const nic1 = (await nics(v.id))[1];
      expectError(await s.api('PATCH', `/vms/${v.id}/nics/${nic1.id}`, { model: 'e1000e' }), 'VM_NOT_STOPPED', 409, /stop it first/);
      const moved = await s.api('PATCH', `/vms/${v.id}/nics/${nic1.id}`, { network: 'user' });
      expect(moved.status, JSON.stringify(moved.body)).toBe(200);
      expectShape(Nic, moved.body);
      expect(moved.body).toMatchObject({ network: 'user', ip: '10.0.2.15', slot: 1 });
      expect(s.runtime.nicsOf(v.id).get(1)).toMatchObject({ kind: 'user' });
      expect(s.hostNet.hosts.get(nat.id)?.some((h) => h.mac === nic1.mac)).toBe(false);
      // DELETE while running: unplugged first
      const before = s.runtime.count('detachNic');
      const del = await s.api('DELETE', `/vms/${v.id}/nics/${nic1.id}`);
      expect(del.status).toBe(200);
      expect(s.runtime.count('detachNic')).toBe(before + 1);
      expect(s.runtime.nicsOf(v.id).has(1)).toBe(false);
      expectError(await s.api('DELETE', `/vms/${v.id}/nics/${nic1.id}`), 'NIC_NOT_FOUND', 404, /not found/);
      expectError(await s.api('PATCH', `/vms/${v.id}/nics/${nic1.id}`, { network: 'user' }), 'NIC_NOT_FOUND', 404, /not found/);
      await stop(v.id);
    });

    it('PATCH a stopped VM\'s NIC: any field; slot 0 keeps vms.mac and nicModel in step; PUT hardware nicModel changes slot 0', async () => {
      const v = await newVm('patch-a');
      const n0 = v.nics[0];
      const r = await s.api('PATCH', `/vms/${v.id}/nics/${n0.id}`, { model: 'e1000e', mac: '02:00:00:00:00:aa' });
      expect(r.status, JSON.stringify(r.body)).toBe(200);
      let now = await vm(v.id);
      expect(now).toMatchObject({ mac: '02:00:00:00:00:aa', nicModel: 'e1000e' });
      expect(now.nics[0]).toMatchObject({ mac: '02:00:00:00:00:aa', model: 'e1000e' });
      expect((await s.api('PUT', `/vms/${v.id}/hardware`, { nicModel: 'rtl8139' })).status).toBe(200);
      now = await vm(v.id);
      expect(now.nics[0].model).toBe('rtl8139');
      // to a managed network: a fixed address for it
      const m = await s.api('PATCH', `/vms/${v.id}/nics/${n0.id}`, { network: nat.id });
      expect(m.status).toBe(200);
      expect(m.body.ip).toMatch(/^192\.168\.101\./);
      expect(s.hostNet.hosts.get(nat.id)).toContainEqual({ mac: '02:00:00:00:00:aa', ip: m.body.ip });
      expectError(await s.api('PATCH', `/vms/${v.id}/nics/${n0.id}`, { mac: '03:00:00:00:00:aa' }), 'VALIDATION', 400, /multicast/);
      expectError(await s.api('PATCH', `/vms/${v.id}/nics/${n0.id}`, {}), 'VALIDATION', 400, /.+/);
    });

    it('port forwards on a user NIC: default NIC, in the argv at start, live add and remove, the refusals', async () => {
      const v = await newVm('fwd-a');
      expectError(await s.api('POST', `/vms/${v.id}/forwards`, { protocol: 'tcp', hostPort: 2222, guestPort: 22, hostAddress: '0.0.0.0' }), 'VALIDATION', 400, /authentication/);
      const r = await s.api('POST', `/vms/${v.id}/forwards`, { protocol: 'tcp', hostPort: 2222, guestPort: 22 });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expectShape(Forward, r.body);
      expect(r.body).toMatchObject({ nic: v.nics[0].id, protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestPort: 22 });
      const listed = await s.api('GET', `/vms/${v.id}/forwards`);
      expect(listed.status).toBe(200);
      expectShape(ForwardList, listed.body);
      expect(listed.body.forwards).toHaveLength(1);
      await start(v.id);
      expect(s.runtime.launches.at(-1)!.nics).toEqual([{ slot: 0, model: 'virtio', mac: v.mac, kind: 'user', forwards: [{ protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestPort: 22 }] }]);
      // the user-mode address while it runs
      expect((await vm(v.id)).addresses).toEqual([{ nic: v.nics[0].id, mac: v.mac, ip: '10.0.2.15', source: 'user' }]);
      const live = await s.api('POST', `/vms/${v.id}/forwards`, { protocol: 'udp', hostPort: 5353, guestPort: 53, nic: v.nics[0].id });
      expect(live.status).toBe(201);
      expect((s.runtime.nicsOf(v.id).get(0) as unknown as { forwards: unknown[] }).forwards).toContainEqual({ protocol: 'udp', hostAddress: '127.0.0.1', hostPort: 5353, guestPort: 53 });
      // taken: by another forward, by this server, by something else on the host
      const other = await newVm('fwd-b');
      expectError(await s.api('POST', `/vms/${other.id}/forwards`, { protocol: 'tcp', hostPort: 2222, guestPort: 22 }), 'PORT_IN_USE', 409, /forwarded to the VM fwd-a/);
      expectError(await s.api('POST', `/vms/${other.id}/forwards`, { protocol: 'tcp', hostPort: s.config.port, guestPort: 22 }), 'PORT_IN_USE', 409, /this server's own/);
      s.hostNet.takenPorts.add('tcp 127.0.0.1:2223');
      expectError(await s.api('POST', `/vms/${other.id}/forwards`, { protocol: 'tcp', hostPort: 2223, guestPort: 22 }), 'PORT_IN_USE', 409, /in use on this host/);
      expectError(await s.api('POST', `/vms/${other.id}/forwards`, { protocol: 'tcp', hostPort: 0, guestPort: 22 }), 'VALIDATION', 400, /.+/);
      expectError(await s.api('POST', `/vms/${other.id}/forwards`, { protocol: 'tcp', hostPort: 65536, guestPort: 22 }), 'VALIDATION', 400, /.+/);
      expectError(await s.api('POST', `/vms/${other.id}/forwards`, { protocol: 'tcp', hostPort: 2224, guestPort: 22, nic: 'nope' }), 'NIC_NOT_FOUND', 404, /nope/);
      // a live removal closes the port, then the row goes
      const del = await s.api('DELETE', `/vms/${v.id}/forwards/${live.body.id}`);
      expect(del.status).toBe(200);
      expect((s.runtime.nicsOf(v.id).get(0) as unknown as { forwards: unknown[] }).forwards).toHaveLength(1);
      expectError(await s.api('DELETE', `/vms/${v.id}/forwards/${live.body.id}`), 'FORWARD_NOT_FOUND', 404, /not found/);
      await stop(v.id);
    });

    it('forwards to a nat NIC are DNAT rules to its fixed address (running or not); bridge, isolated and no NIC are refused', async () => {
      const v = await newVm('dnat-a', { network: 'lab' });
      const ip = v.nics[0].ip!;
      const r = await s.api('POST', `/vms/${v.id}/forwards`, { protocol: 'tcp', hostPort: 8080, guestPort: 80 });
      expect(r.status, JSON.stringify(r.body)).toBe(201);
      expect(s.hostNet.rules.forwards).toContainEqual({ id: r.body.id, protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 8080, guestIp: ip, guestPort: 80, bridge: 'qm-lab' });
      s.hostNet.failNext('applyRules', new AppError('NETWORK_SETUP_FAILED', 'nft: no such table'));
      expectError(await s.api('POST', `/vms/${v.id}/forwards`, { protocol: 'tcp', hostPort: 8081, guestPort: 80 }), 'NETWORK_SETUP_FAILED', 500, /nft/);
      expect(((await s.api('GET', `/vms/${v.id}/forwards`)).body as ForwardList).forwards).toHaveLength(1);
      const none = await newVm('dnat-none');
      expect((await s.api('DELETE', `/vms/${none.id}/nics/${none.nics[0].id}`)).status).toBe(200);
      expectError(await s.api('POST', `/vms/${none.id}/forwards`, { protocol: 'tcp', hostPort: 8082, guestPort: 80 }), 'FORWARD_UNSUPPORTED', 422, /no NIC on the user network or a nat network/);
      const lan = await newVm('dnat-lan', { network: 'lan' });
      expectError(await s.api('POST', `/vms/${lan.id}/forwards`, { protocol: 'tcp', hostPort: 8083, guestPort: 80, nic: lan.nics[0].id }), 'FORWARD_UNSUPPORTED', 422, /bridge network cannot be reached/);
      const nod = await newVm('dnat-nod', { network: 'nodhcp' });
      expectError(await s.api('POST', `/vms/${nod.id}/forwards`, { protocol: 'tcp', hostPort: 8084, guestPort: 80 }), 'FORWARD_UNSUPPORTED', 422, /no fixed address/);
      // the forward's rule goes with its deletion
      expect((await s.api('DELETE', `/vms/${v.id}/forwards/${r.body.id}`)).status).toBe(200);
      expect(s.hostNet.rules.forwards.some((f) => f.id === r.body.id)).toBe(false);
      // a VM deleted: its fixed address and forwards leave the host
      expect((await s.api('POST', `/vms/${v.id}/forwards`, { protocol: 'tcp', hostPort: 8085, guestPort: 80 })).status).toBe(201);
      expect((await s.api('DELETE', `/vms/${v.id}`)).status).toBe(200);
      await s.built.networks!.service.serial(async () => undefined);
      expect(s.hostNet.hosts.get(nat.id)?.some((h) => h.ip === ip)).toBe(false);
      expect(s.hostNet.rules.forwards.some((f) => f.hostPort === 8085)).toBe(false);
    });

    it('addresses: a managed NIC\'s lease (dhcp) and the agent\'s interfaces (agent), in the VM object and the list', async () => {
      const v = await newVm('addr-a', { network: 'lab' });
      await start(v.id);
      s.hostNet.leaseTable.set(nat.id, [{ mac: v.mac, ip: v.nics[0].ip!, hostname: 'guest', expiresAt: null }]);
      s.runtime.agents.set(v.id, { interfaces: [{ name: 'lo', mac: '00:00:00:00:00:00', ips: ['127.0.0.1/8'] }, { name: 'eth0', mac: v.mac, ips: [`${v.nics[0].ip!}/24`, 'fe80::1/64'] }] });
      const sent: Vm[] = [];
      const unsubscribe = s.built.bus!.subscribe((ev) => void (ev.type === 'vm.updated' && ev.vm.id === v.id && sent.push(ev.vm)));
      await s.built.networks!.addresses.refresh();
      unsubscribe();
      expect(sent.at(-1)?.addresses.map((a) => a.source)).toEqual(['dhcp', 'agent']); // the UI hears of it
      // an address the lease already gives is not repeated for the agent; loopback is left out
      const expected = [
        { nic: v.nics[0].id, mac: v.mac, ip: v.nics[0].ip, source: 'dhcp' },
        { nic: v.nics[0].id, mac: v.mac, ip: 'fe80::1', source: 'agent' },
      ];
      expect((await vm(v.id)).addresses).toEqual(expected);
      expect(((await s.api('GET', '/vms')).body.vms as Vm[]).find((x) => x.id === v.id)!.addresses).toEqual(expected);
      const list = await networks();
      expect(list.networks.find((n) => n.id === nat.id)!.leases).toEqual([{ mac: v.mac, ip: v.nics[0].ip, hostname: 'guest', expiresAt: null }]);
      await stop(v.id);
      s.runtime.agents.delete(v.id);
    });

    it('a start with a NIC on a managed network is refused while managed networks are not available', async () => {
      const v = await newVm('unavail-a', { network: 'lab' });
      s.hostNet.available = { available: false, reason: 'the server does not run as root' };
      try {
        expectError(await s.api('POST', `/vms/${v.id}/start`), 'NETWORKS_UNAVAILABLE', 422, /not available on this server \(the server does not run as root\)/);
        expect((await vm(v.id)).status).toBe('stopped');
        expectError(await s.api('POST', '/networks', { name: 'later', type: 'nat' }), 'NETWORKS_UNAVAILABLE', 422, /not available/);
        expectError(await s.api('POST', `/vms/${v.id}/nics`, { network: 'lab' }), 'NETWORKS_UNAVAILABLE', 422, /not available/);
        expect((await networks()).managed).toEqual({ available: false, reason: 'the server does not run as root' });
      } finally {
        s.hostNet.available = { available: true, reason: null };
      }
    });

    it('a clone gets a new MAC on every NIC, on the same networks', async () => {
      const src = await newVm('clone-src', { network: 'lab' });
      expect((await s.api('POST', `/vms/${src.id}/nics`, { network: 'user', model: 'e1000e' })).status).toBe(201);
      const r = await s.api('POST', `/vms/${src.id}/clone`, { name: 'clone-dst', mode: 'full' });
      expect(r.status, JSON.stringify(r.body)).toBe(202);
      await s.built.tasks.idle();
      const task = ((await s.api('GET', `/tasks/${(r.body as TaskEnvelope).task.id}`)).body as { task: Task }).task;
      expect(task.status, JSON.stringify(task)).toBe('succeeded');
      const dst = await vm(task.result!.vm as string);
      const from = (await vm(src.id)).nics;
      expect(dst.nics.map((n) => [n.network, n.model, n.slot])).toEqual(from.map((n) => [n.network, n.model, n.slot]));
      for (const n of dst.nics) expect(from.map((f) => f.mac)).not.toContain(n.mac);
      expect(dst.mac).toBe(dst.nics[0].mac);
      expect(dst.nics[0].ip).not.toBe(from[0].ip);
    });

    it('DELETE /networks/{id}: refused while a VM uses it (named) and for user; else the row, the rules and the bridge go', async () => {
      expectError(await s.api('DELETE', `/networks/${nat.id}`), 'NETWORK_IN_USE', 409, /used by the VMs? .*net-b/);
      expectError(await s.api('DELETE', '/networks/user'), 'VALIDATION', 400, /built in/);
      expectError(await s.api('DELETE', '/networks/nope'), 'NETWORK_NOT_FOUND', 404, /nope/);
      const made = await s.api('POST', '/networks', { name: 'gone', type: 'isolated' });
      expect(made.status).toBe(201);
      const downs = s.hostNet.count('down');
      const r = await s.api('DELETE', '/networks/gone');
      expect(r.status).toBe(200);
      expect(r.body).toEqual({ message: 'Network deleted successfully' });
      expect(s.hostNet.count('down')).toBe(downs + 1);
      expect(s.hostNet.upNets.has(made.body.id)).toBe(false);
      expect(s.hostNet.rules.networks.some((n) => n.id === made.body.id)).toBe(false);
      expect((await networks()).networks.some((n) => n.name === 'gone')).toBe(false);
      expect((await s.api('DELETE', '/networks/lan')).status).toBe(409); // dnat-lan is on it
    });
  });

  describe('forwards with authentication on (issue 11)', () => {
    it('hostAddress 0.0.0.0 is allowed once authentication is on; a read token cannot add a forward', async () => {
      const s = await startInProcess({ env: { AUTH: 'required', ADMIN_PASSWORD: 'a long test password' } });
      try {
        const login = await s.api('POST', '/auth/login', { password: 'a long test password' });
        const cookie = String(login.headers['set-cookie']).split(';')[0];
        const made = await s.api('POST', '/vms', { name: 'auth-fwd', cpus: 1, memory: 64 }, { cookie });
        expect(made.status).toBe(201);
        const id = made.body.vm.id as string;
        expectError(await s.api('POST', `/vms/${id}/forwards`, { protocol: 'tcp', hostPort: 2299, guestPort: 22, hostAddress: '0.0.0.0' }), 'UNAUTHORIZED', 401, /.+/);
        const r = await s.api('POST', `/vms/${id}/forwards`, { protocol: 'tcp', hostPort: 2299, guestPort: 22, hostAddress: '0.0.0.0' }, { cookie });
        expect(r.status, JSON.stringify(r.body)).toBe(201);
        expect(r.body).toMatchObject({ hostAddress: '0.0.0.0', hostPort: 2299 });
        const token = await s.api('POST', '/tokens', { name: 'ro', scope: 'read' }, { cookie });
        expect(token.status, JSON.stringify(token.body)).toBe(201);
        const bearer = { authorization: `Bearer ${token.body.token as string}` };
        expectError(await s.api('POST', `/vms/${id}/forwards`, { protocol: 'tcp', hostPort: 2298, guestPort: 22 }, bearer), 'FORBIDDEN', 403, /read scope/);
        expect((await s.api('GET', `/vms/${id}/forwards`, undefined, bearer)).body.forwards).toHaveLength(1);
      } finally {
        await s.close();
      }
    });
  });

  describe('networks at restart (issue 11)', () => {
    it('a restart reconciles the host with the records (running VMs\' taps kept); a stop with nothing left removes the table', async () => {
      const dataDir = makeTempDir();
      const runtime = new FakeRuntime(path.join(dataDir, 'run'));
      let s = await startInProcess({ dataDir, keepDir: true, runtime });
      let id = '';
      let netId = '';
      try {
        netId = (await s.api('POST', '/networks', { name: 'keep', type: 'nat' })).body.id;
        id = (await s.api('POST', '/vms', { name: 'r-a', cpus: 1, memory: 64, network: 'keep' })).body.vm.id;
        expect((await s.api('POST', `/vms/${id}/forwards`, { protocol: 'tcp', hostPort: 9022, guestPort: 22 })).status).toBe(201);
        expect((await s.api('POST', `/vms/${id}/start`)).status).toBe(200);
        const p = runtime.process(id)!;
        runtime.survivors.set(id, { state: 'running', process: p });
        await s.close();
        s = await startInProcess({ dataDir, keepDir: true, runtime, hostNet: new FakeHostNetworks() });
        const rec = s.hostNet.reconciled!;
        expect(rec.networks).toMatchObject([{ id: netId, type: 'nat', bridge: 'qm-keep', hosts: [{ ip: '192.168.101.2' }] }]);
        expect(rec.forwards).toMatchObject([{ hostPort: 9022, guestPort: 22, guestIp: '192.168.101.2', bridge: 'qm-keep' }]);
        expect(rec.keepTaps).toEqual([[tapName(id, 0), 'qm-keep']]);
        expect((await s.api('POST', `/vms/${id}/stop`)).status).toBe(200);
        expect((await s.api('DELETE', `/vms/${id}`)).status).toBe(200);
        expect((await s.api('DELETE', `/networks/${netId}`)).status).toBe(200);
        const hostNet = s.hostNet;
        await s.close();
        expect(hostNet.tableRemoved).toBe(1);
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });

    it('migration 015 on a database made before it: every VM keeps its MAC and NIC model as slot 0 on the user network', async () => {
      const dataDir = makeTempDir();
      try {
        const older = makeTempDir('qm-mig-');
        const all = path.resolve(path.dirname(new URL(import.meta.url).pathname), '../../../packages/server/src/store/migrations');
        for (const f of fs.readdirSync(all).filter((f) => f.endsWith('.sql') && f < '015')) fs.copyFileSync(path.join(all, f), path.join(older, f));
        const db = openDb(path.join(dataDir, 'db.sqlite'), older);
        db.prepare(`INSERT INTO vms (id, name, cpus, memory, status, vnc_port, mac, created_at, nic_model) VALUES ('11111111-1111-4111-8111-111111111111', 'old', 1, 64, 'stopped', 5900, '52:54:00:12:34:56', '2026-01-01T00:00:00.000Z', 'e1000e')`).run();
        db.close();
        fs.rmSync(older, { recursive: true, force: true });
        expect(() => new Database(path.join(dataDir, 'db.sqlite')).prepare('SELECT * FROM vm_nics').all()).toThrow(/no such table/);
        const s = await startInProcess({ dataDir, keepDir: true });
        try {
          const v = ((await s.api('GET', '/vms/11111111-1111-4111-8111-111111111111')).body as VmEnvelope).vm;
          expect(v.nics).toEqual([{ id: expect.stringMatching(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/), network: 'user', model: 'e1000e', mac: '52:54:00:12:34:56', ip: '10.0.2.15', slot: 0 }]);
          expect((await s.api('POST', '/vms/11111111-1111-4111-8111-111111111111/start')).status).toBe(200);
          expect(s.runtime.launches.at(-1)!.nics).toEqual([{ slot: 0, model: 'e1000e', mac: '52:54:00:12:34:56', kind: 'user', forwards: [] }]);
          expect((await s.api('POST', '/vms/11111111-1111-4111-8111-111111111111/stop')).status).toBe(200);
        } finally {
          await s.close();
        }
      } finally {
        fs.rmSync(dataDir, { recursive: true, force: true });
      }
    });
  });
}
