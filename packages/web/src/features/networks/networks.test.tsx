// Networks (issue 11) and the host dashboard (issue 14): the forms' checks, the ssh line, the
// pages rendered on the server (no DOM needed) and the requests the API client makes (fake fetch).
import { afterEach, describe, expect, it, vi } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { Forward, HostMetrics, MetricsSummary, Network, NetworkList, Vm } from '@qemu-manager/contract';
import { ApiError } from '../../api/client';
import { forwardsApi, hostApi, networkKeys, networksApi, nicsApi } from '../../api/networks';
import { qk } from '../../api/queries';
import { vm } from '../../test/fixtures';
import { en } from '../../i18n/en';
import { it as itWords } from '../../i18n/it';
import { VmListPage } from '../vms/VmListPage';
import HostPage from '../host/HostPage';
import { busiest, pushSample, storageUsedPercent, usedPercent } from '../host/hostFigures';
import NetworksPage from './NetworksPage';
import { VmNetworkSection } from './VmNetworkSection';
import { createForwardBody, createNetworkBody, emptyForwardForm, emptyNetworkForm, firstAddress, forwardFormErrors, isValidMac, networkFormErrors, sshCommand, subnetRange } from './networkRules';

const USER: Network = { id: 'user', name: 'user', type: 'user', bridge: null, subnet: '10.0.2.0/24', gateway: '10.0.2.2', dhcp: null, leases: [], vms: [], createdAt: null };
const LAB: Network = {
  id: '55555555-5555-4555-8555-555555555555', name: 'lab', type: 'nat', bridge: 'qm-lab', subnet: '192.168.100.0/24', gateway: '192.168.100.1',
  dhcp: { start: '192.168.100.2', end: '192.168.100.254' },
  leases: [{ mac: '52:54:00:aa:bb:cc', ip: '192.168.100.2', hostname: 'guest', expiresAt: null }],
  vms: ['11111111-1111-4111-8111-111111111111'], createdAt: '2026-01-01T00:00:00.000Z',
};
const fwd = (over: Partial<Forward> = {}): Forward => ({
  id: '66666666-6666-4666-8666-666666666666', nic: '33333333-3333-4333-8333-333333333333', protocol: 'tcp', hostAddress: '127.0.0.1', hostPort: 2222, guestPort: 22, createdAt: '2026-01-01T00:00:00.000Z', ...over,
});

function render(node: React.ReactNode, data: { vms?: Vm[]; networks?: NetworkList; forwards?: [string, Forward[]]; host?: HostMetrics; summary?: MetricsSummary; scope?: 'read' | 'admin'; authRequired?: boolean } = {}): string {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  qc.setQueryData(qk.vms, data.vms ?? []);
  qc.setQueryData(qk.isos, []);
  qc.setQueryData(qk.auth, { authRequired: data.authRequired ?? false, authenticated: true, scope: data.scope ?? 'admin', actor: 'local' });
  if (data.networks) qc.setQueryData(networkKeys.networks, data.networks);
  if (data.forwards) qc.setQueryData(networkKeys.forwards(data.forwards[0]), data.forwards[1]);
  if (data.host) qc.setQueryData(networkKeys.host, data.host);
  if (data.summary) qc.setQueryData(networkKeys.summary, data.summary);
  return renderToStaticMarkup(<QueryClientProvider client={qc}>{node}</QueryClientProvider>);
}

describe('network form checks mirror the contract', () => {
  it('names, subnets, DHCP ranges and bridge names', () => {
    const ok = { ...emptyNetworkForm(), name: 'lab' };
    expect(networkFormErrors(ok)).toEqual({});
    expect(createNetworkBody(ok)).toEqual({ name: 'lab', type: 'nat' });
    for (const bad of ['', 'Lab', '1lab', 'lab;rm', 'a-very-long-name', 'lab net']) expect(networkFormErrors({ ...ok, name: bad }).name, bad).toBe(en.networks.nameInvalid);
    expect(networkFormErrors({ ...ok, subnet: '192.168.100.1/24' }).subnet).toBe(en.networks.subnetInvalid); // host bits set
    expect(networkFormErrors({ ...ok, subnet: '10.0.0.0/8' }).subnet).toBe(en.networks.subnetInvalid); // wider than /16
    expect(networkFormErrors({ ...ok, subnet: '10.10.0.0/30' }).subnet).toBe(en.networks.subnetInvalid);
    expect(subnetRange('192.168.100.0/24')).toEqual({ base: 0xc0a86400, last: 0xc0a864ff });
    const custom = { ...ok, subnet: '192.168.100.0/24', dhcpMode: 'custom' as const, dhcpStart: '192.168.100.10', dhcpEnd: '192.168.100.20' };
    expect(networkFormErrors(custom)).toEqual({});
    expect(createNetworkBody(custom)).toEqual({ name: 'lab', type: 'nat', subnet: '192.168.100.0/24', dhcp: { start: '192.168.100.10', end: '192.168.100.20' } });
    expect(networkFormErrors({ ...custom, dhcpStart: '192.168.100.30' }).dhcp).toBe(en.networks.dhcpOrder);
    expect(networkFormErrors({ ...custom, dhcpStart: '192.168.100.1' }).dhcp).toBe(en.networks.dhcpOutside); // the gateway
    expect(networkFormErrors({ ...custom, dhcpEnd: '192.168.101.5' }).dhcp).toBe(en.networks.dhcpOutside);
    expect(networkFormErrors({ ...custom, dhcpEnd: '192.168.100.300' }).dhcp).toBe(en.networks.dhcpInvalid);
    expect(createNetworkBody({ ...ok, type: 'isolated', dhcpMode: 'none' })).toEqual({ name: 'lab', type: 'isolated', dhcp: null });
    const bridge = { ...ok, type: 'bridge' as const, bridge: 'br0', subnet: 'ignored' };
    expect(networkFormErrors(bridge)).toEqual({});
    expect(createNetworkBody(bridge)).toEqual({ name: 'lab', type: 'bridge', bridge: 'br0' });
    expect(networkFormErrors({ ...bridge, bridge: 'br0;reboot' }).bridge).toBe(en.networks.bridgeInvalid);
    expect(networkFormErrors({ ...bridge, bridge: 'a-name-too-long-x' }).bridge).toBe(en.networks.bridgeInvalid);
  });

  it('MACs and forward ports', () => {
    expect(isValidMac('52:54:00:12:34:56')).toBe(true);
    expect(isValidMac('01:00:5e:00:00:01')).toBe(false); // multicast
    expect(isValidMac('52:54:00:12:34')).toBe(false);
    const f = { ...emptyForwardForm(), hostPort: '2222' };
    expect(forwardFormErrors(f)).toEqual({});
    expect(createForwardBody(f)).toEqual({ protocol: 'tcp', hostPort: 2222, guestPort: 22 });
    expect(createForwardBody({ ...f, hostAddress: '0.0.0.0', nic: 'n1' })).toEqual({ protocol: 'tcp', hostPort: 2222, guestPort: 22, hostAddress: '0.0.0.0', nic: 'n1' });
    for (const p of ['0', '65536', '', '22a', '-1']) expect(forwardFormErrors({ ...f, hostPort: p }).hostPort, p).toBe(en.networks.portInvalid);
  });
});

describe('the ssh line and the list address', () => {
  it('TCP to guest 22 only; 127.0.0.1 for a loopback forward, the page’s host for 0.0.0.0; only a plain user name', () => {
    expect(sshCommand(fwd(), 'vmhost.example')).toBe('ssh -p 2222 127.0.0.1');
    expect(sshCommand(fwd(), 'vmhost.example', 'debian')).toBe('ssh -p 2222 debian@127.0.0.1');
    expect(sshCommand(fwd({ hostAddress: '0.0.0.0', hostPort: 10022 }), 'vmhost.example', 'root')).toBe('ssh -p 10022 root@vmhost.example');
    expect(sshCommand(fwd({ hostAddress: '0.0.0.0' }), '[::1]')).toBe('ssh -p 2222 ::1');
    expect(sshCommand(fwd({ hostAddress: '0.0.0.0' }), '')).toBe('ssh -p 2222 127.0.0.1');
    expect(sshCommand(fwd(), 'h', 'x; rm -rf /')).toBe('ssh -p 2222 127.0.0.1');
    expect(sshCommand(fwd({ guestPort: 80 }), 'h')).toBeNull();
    expect(sshCommand(fwd({ protocol: 'udp' }), 'h')).toBeNull();
  });
  it('the first address the server knows, a lease or the agent’s before the fixed user-mode one', () => {
    expect(firstAddress(vm())).toBeNull();
    expect(firstAddress(vm({ addresses: [{ nic: 'n', mac: 'm', ip: '10.0.2.15', source: 'user' }] }))).toBe('10.0.2.15');
    expect(firstAddress(vm({ addresses: [{ nic: 'n', mac: 'm', ip: '10.0.2.15', source: 'user' }, { nic: 'o', mac: 'p', ip: '192.168.100.2', source: 'dhcp' }] }))).toBe('192.168.100.2');
  });
});

describe('Networks page', () => {
  it('without managed networks: the reason, only user, no create button', () => {
    const html = render(<NetworksPage />, { networks: { networks: [USER], managed: { available: false, reason: 'the server does not run as root' } } });
    expect(html).toContain('data-testid="network-user"');
    expect(html).toContain('data-testid="networks-unavailable"');
    expect(html).toContain('the server does not run as root');
    expect(html).not.toContain('create-network-open');
    expect(html).not.toContain('network-delete-user'); // the built-in network cannot go
  });
  it('with managed networks: create offered; a nat network shows bridge, subnet, DHCP range, its machine and the leases', () => {
    const html = render(<NetworksPage />, { vms: [vm()], networks: { networks: [USER, LAB], managed: { available: true, reason: null } } });
    expect(html).toContain('data-testid="create-network-open"');
    expect(html).not.toContain('networks-unavailable');
    const lab = html.slice(html.indexOf('data-testid="network-lab"'));
    expect(lab).toContain('qm-lab');
    expect(lab).toContain('192.168.100.0/24');
    expect(lab).toContain('192.168.100.2 – 192.168.100.254');
    expect(lab).toMatch(/data-testid="network-vms" data-count="1"><span><a href="\/vms\/11111111[^"]*">alpha<\/a>/);
    expect(lab).toContain('data-testid="network-leases"');
    expect(lab).toContain('52:54:00:aa:bb:cc');
    expect(lab).toContain('>never<');
    expect(lab).toContain('data-testid="network-delete-lab"');
  });
  it('a read-only token sees the networks but no create or delete', () => {
    const html = render(<NetworksPage />, { networks: { networks: [USER, LAB], managed: { available: true, reason: null } }, scope: 'read' });
    expect(html).toContain('data-testid="network-lab"');
    expect(html).not.toContain('create-network-open');
    expect(html).not.toContain('network-delete-lab');
  });
});

describe('VM page Network section and the list', () => {
  const v = vm({ status: 'running', addresses: [{ nic: '33333333-3333-4333-8333-333333333333', mac: '52:54:00:12:34:56', ip: '10.0.2.15', source: 'user' }] });
  it('shows the NIC, the forwards, the ssh line for TCP 22 and the addresses with copy buttons', () => {
    const html = render(<VmNetworkSection vm={v} />, {
      networks: { networks: [USER], managed: { available: false, reason: 'x' } },
      forwards: [v.id, [fwd(), fwd({ id: '77777777-7777-4777-8777-777777777777', hostPort: 8080, guestPort: 80 })]],
    });
    expect(html).toMatch(/data-testid="vm-nic-0" data-network="user"><td data-testid="nic-network">user<\/td><td data-testid="nic-model">virtio<\/td><td class="mono" data-testid="nic-mac">52:54:00:12:34:56</);
    expect(html).toContain('data-testid="vm-forward-tcp-2222"');
    expect(html).toContain('data-testid="vm-forward-tcp-8080"');
    expect(html).toContain('data-testid="ssh-line-2222">ssh -p 2222 127.0.0.1<');
    expect(html).not.toContain('ssh-line-8080');
    expect(html).toContain('data-testid="ssh-copy-2222"');
    expect(html).toContain('data-testid="address-copy-0"');
    expect(html).toContain('data-testid="nic-add-open"');
    expect(html).toContain('data-testid="forward-add-open"');
  });
  it('no forwards: says so and shows no ssh line; read-only: no buttons', () => {
    const html = render(<VmNetworkSection vm={v} />, { forwards: [v.id, []], scope: 'read' });
    expect(html).toContain('data-testid="forwards-empty"');
    expect(html).not.toContain('vm-ssh');
    expect(html).not.toContain('nic-add-open');
    expect(html).not.toContain('nic-remove-0');
  });
  it('the VM list shows each VM’s first address with a copy button, from the list itself', () => {
    const html = render(<VmListPage />, { vms: [v, vm({ id: 'b', name: 'beta' })] });
    expect(html).toContain('data-testid="vm-ip-alpha"');
    expect(html).toContain('data-testid="vm-ip-copy-alpha"');
    expect(html).not.toContain('vm-ip-beta');
  });
});

describe('host dashboard', () => {
  const host: HostMetrics = {
    timestamp: '2026-01-01T00:00:00.000Z',
    cpu: { cores: 2, percent: 37.4, loadAverage: [0.5, 0.25, 0.1] },
    memory: { totalBytes: 8 * 1024 ** 3, availableBytes: 6 * 1024 ** 3 },
    storage: [
      { kind: 'storage-root', name: '/data', path: '/data', freeBytes: 30 * 1024 ** 3, totalBytes: 40 * 1024 ** 3 },
      { kind: 'backup-target', name: 'nas', path: '/mnt/nas', freeBytes: null, totalBytes: null },
    ],
  };
  it('shows CPU, memory, storage per root and target, and the running machines', () => {
    const summary: MetricsSummary = { stepSeconds: 5, vms: [{ id: vm().id, running: true, cpuPercent: 12, cpu: [10, 12] }, { id: 'b', running: false, cpuPercent: null, cpu: [] }] };
    const html = render(<HostPage />, { host, summary, vms: [vm({ status: 'running' })] });
    expect(html).toContain('37 % of 2 cores');
    expect(html).toContain('2 GiB used of 8 GiB');
    expect(html).toMatch(/role="progressbar" aria-label="Memory" aria-valuemin="0" aria-valuemax="100" aria-valuenow="25"/);
    expect(html).toContain('Storage root /data');
    expect(html).toContain('30 GiB free of 40 GiB');
    expect(html).toContain('Backup target nas');
    expect(html).toContain('unknown');
    expect(html).toContain('data-testid="host-vms-running" data-running="1">1 of 2 running');
    expect(html).toContain('>alpha</a>');
  });
  it('figures', () => {
    expect(usedPercent(1, 3)).toBe(33.3);
    expect(usedPercent(1, 0)).toBeNull();
    expect(storageUsedPercent(host.storage[0]!)).toBe(25);
    expect(storageUsedPercent(host.storage[1]!)).toBeNull();
    expect(pushSample([1, 2, 3], 4, 3)).toEqual([2, 3, 4]);
    expect(busiest({ stepSeconds: 5, vms: [{ id: 'a', running: true, cpuPercent: 1, cpu: [] }, { id: 'b', running: true, cpuPercent: 90, cpu: [] }, { id: 'c', running: false, cpuPercent: 99, cpu: [] }] }).map((x) => x.id)).toEqual(['b', 'a']);
  });
});

describe('API client (fake fetch)', () => {
  afterEach(() => vi.unstubAllGlobals());
  function fakeFetch(answers: Array<[number, unknown]>) {
    const calls: { url: string; method: string; body: unknown }[] = [];
    let i = 0;
    vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, method: init.method ?? 'GET', body: init.body ? JSON.parse(init.body as string) : undefined });
      const [status, body] = answers[Math.min(i++, answers.length - 1)]!;
      return new Response(status === 204 ? null : JSON.stringify(body), { status });
    }));
    return calls;
  }

  it('every networks, NIC and forward route, with its method, path and body', async () => {
    const nic = vm().nics[0]!;
    const calls = fakeFetch([
      [200, { networks: [USER], managed: { available: true, reason: null } }],
      [201, LAB],
      [204, null],
      [200, { nics: [nic] }],
      [201, nic],
      [200, nic],
      [204, null],
      [200, { forwards: [fwd()] }],
      [201, fwd()],
      [204, null],
      [200, { timestamp: 'x' }],
      [200, { stepSeconds: 5, vms: [] }],
    ]);
    expect((await networksApi.list()).networks[0]!.name).toBe('user');
    expect((await networksApi.create({ name: 'lab', type: 'nat' })).bridge).toBe('qm-lab');
    await networksApi.remove('lab id');
    expect(await nicsApi.list('v1')).toEqual([nic]);
    expect((await nicsApi.create('v1', { network: 'user', model: 'e1000e' })).id).toBe(nic.id);
    expect((await nicsApi.update('v1', 'n1', { network: 'lab' })).id).toBe(nic.id);
    await nicsApi.remove('v1', 'n1');
    expect((await forwardsApi.list('v1'))[0]!.hostPort).toBe(2222);
    expect((await forwardsApi.create('v1', { protocol: 'tcp', hostPort: 2222, guestPort: 22 })).guestPort).toBe(22);
    await forwardsApi.remove('v1', 'f1');
    await hostApi.metrics();
    await hostApi.summary();
    expect(calls).toEqual([
      { url: '/api/networks', method: 'GET', body: undefined },
      { url: '/api/networks', method: 'POST', body: { name: 'lab', type: 'nat' } },
      { url: '/api/networks/lab%20id', method: 'DELETE', body: undefined },
      { url: '/api/vms/v1/nics', method: 'GET', body: undefined },
      { url: '/api/vms/v1/nics', method: 'POST', body: { network: 'user', model: 'e1000e' } },
      { url: '/api/vms/v1/nics/n1', method: 'PATCH', body: { network: 'lab' } },
      { url: '/api/vms/v1/nics/n1', method: 'DELETE', body: undefined },
      { url: '/api/vms/v1/forwards', method: 'GET', body: undefined },
      { url: '/api/vms/v1/forwards', method: 'POST', body: { protocol: 'tcp', hostPort: 2222, guestPort: 22 } },
      { url: '/api/vms/v1/forwards/f1', method: 'DELETE', body: undefined },
      { url: '/api/host/metrics', method: 'GET', body: undefined },
      { url: '/api/metrics/summary', method: 'GET', body: undefined },
    ]);
  });

  it('a refused delete keeps the server’s code and words (NETWORK_IN_USE), a taken port PORT_IN_USE', async () => {
    fakeFetch([[409, { error: 'network lab is used by VM alpha', code: 'NETWORK_IN_USE', timestamp: 'x' }]]);
    const err = await networksApi.remove('lab').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 409, code: 'NETWORK_IN_USE', message: 'network lab is used by VM alpha' });
    fakeFetch([[409, { error: 'host port 2222 is in use', code: 'PORT_IN_USE', timestamp: 'x' }]]);
    await expect(forwardsApi.create('v1', { protocol: 'tcp', hostPort: 2222, guestPort: 22 })).rejects.toMatchObject({ code: 'PORT_IN_USE' });
  });
});

describe('words', () => {
  it('Italian is its own, not English copies, for the new pages and error codes', () => {
    for (const k of ['title', 'intro', 'create', 'leases', 'nics', 'forwards', 'addresses', 'removeConfirm'] as const) {
      expect(String(itWords.networks[k]), k).not.toBe(String(en.networks[k]));
    }
    for (const k of ['intro', 'memory', 'storage', 'vms'] as const) expect(itWords.host[k], k).not.toBe(en.host[k]);
    expect(itWords.errorCodes.NETWORK_IN_USE).not.toBe(en.errorCodes.NETWORK_IN_USE);
    expect(itWords.errorCodes.PORT_IN_USE).toContain('porta');
  });
});
