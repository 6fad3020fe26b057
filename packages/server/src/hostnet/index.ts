/**
 * The host network adapter (issue 11): HostNetworks and TapDevices on Linux, with iproute2,
 * nftables, dnsmasq, /sys and /proc. See the port (runtime/network-port.ts) for what each call
 * promises; links.ts, dnsmasq.ts and rules.ts for how.
 */
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { uidHasProcesses } from '../lib/proc.js';
import { AppError, errorMessage, isAppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { parseSubnet } from '../lib/ipv4.js';
import type { Logger } from '../lib/log.js';
import type {
  DnatForward,
  HostLease,
  HostNetworks,
  HostNetworkSpec,
  ManagedNetworkSpec,
  NetworkHost,
} from '../runtime/network-port.js';
import type { TapDevices } from '../runtime/port.js';
import { dnsmasqArgs, dnsmasqFiles, hostsFileText, parseLeases, readBounded, runningDnsmasq, signalOurs, stopDnsmasq, writeAtomic } from './dnsmasq.js';
import { Links, writeSysctl } from './links.js';
import { isOurTapName, networkId, ourLink } from './names.js';
import { NET_CHAINS, NFT_TABLE, networkRules } from './rules.js';

export { networkRules } from './rules.js';
export { dnsmasqArgs, parseLeases } from './dnsmasq.js';

export interface HostNetworksOptions {
  /** `$DATA_DIR/run/net`: dnsmasq's pid, lease and hosts files. */
  runDir: string;
  log: Logger;
  /** Program paths (defaults: found in /usr/sbin, /sbin, /usr/bin, /bin). */
  ip?: string;
  nft?: string;
  dnsmasq?: string;
  /** /proc/sys/net (tests never need another; kept for clarity). */
  procSysNet?: string;
}

const TIMEOUT_MS = 10_000;

function findProgram(name: string): string | null {
  for (const dir of ['/usr/sbin', '/sbin', '/usr/bin', '/bin']) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return p;
    } catch {
      /* next */
    }
  }
  return null;
}

function setupFailed(what: string, err: unknown): AppError {
  if (isAppError(err)) return err;
  return new AppError('NETWORK_SETUP_FAILED', `${what}: ${errorMessage(err)}`, { cause: err });
}

class LinuxHostNetworks implements HostNetworks, TapDevices {
  private readonly links: Links;
  private readonly ip: string | null;
  private readonly nft: string | null;
  private readonly dnsmasq: string | null;
  private readonly sysNet: string;
  /** Managed networks this adapter brought up or adopted (leases need the subnet). */
  private readonly specs = new Map<string, ManagedNetworkSpec>();
  /** The forwards of the last applyRules (they hold host ports without a socket). */
  private forwards: readonly DnatForward[] = [];
  /** One host change at a time (up, down, rules, reconcile). */
  private queue: Promise<unknown> = Promise.resolve();

  constructor(private readonly opts: HostNetworksOptions) {
    this.ip = opts.ip ?? findProgram('ip');
    this.nft = opts.nft ?? findProgram('nft');
    this.dnsmasq = opts.dnsmasq ?? findProgram('dnsmasq');
    this.sysNet = opts.procSysNet ?? '/proc/sys/net';
    this.links = new Links(this.ip ?? 'ip');
  }

  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const job = this.queue.then(fn, fn);
    this.queue = job.catch(() => undefined);
    return job;
  }

  availability(): { available: boolean; reason: string | null } {
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      return { available: false, reason: 'networks other than user need the server to run as root' };
    }
    const missing = [
      ['ip (iproute2)', this.ip],
      ['nft (nftables)', this.nft],
      ['dnsmasq (dnsmasq-base)', this.dnsmasq],
    ].filter(([, p]) => !p || !fs.existsSync(p));
    if (missing.length) return { available: false, reason: `missing on this host: ${missing.map(([n]) => n).join(', ')}` };
    return { available: true, reason: null };
  }

  private needAvailable(): void {
    const a = this.availability();
    if (!a.available) throw new AppError('NETWORKS_UNAVAILABLE', `Networks are not available here: ${a.reason}`);
  }

  hostSubnets(): Promise<string[]> {
    return this.links.hostSubnets().catch((err: unknown) => Promise.reject(setupFailed("Cannot read this host's addresses", err)));
  }

  isBridge(name: string): Promise<boolean> {
    return Promise.resolve(this.links.isHostBridge(name));
  }

  up(spec: ManagedNetworkSpec): Promise<void> {
    return this.serial(() => this.upNow(spec));
  }

  private ensureRunDir(): void {
    // dnsmasq re-reads the hosts file as `nobody`: the run dir and its parents may be traversed (not listed).
    fs.mkdirSync(this.opts.runDir, { recursive: true, mode: 0o711 });
    fs.chmodSync(this.opts.runDir, 0o711);
    for (const d of [path.dirname(this.opts.runDir), path.dirname(path.dirname(this.opts.runDir))]) {
      const mode = fs.statSync(d).mode & 0o7777;
      if ((mode & 0o001) === 0) fs.chmodSync(d, mode | 0o001);
    }
  }

  private async upNow(spec: ManagedNetworkSpec): Promise<void> {
    this.needAvailable();
    const undo: Array<() => Promise<void> | void> = [];
    try {
      networkId(spec.id);
      ourLink(spec.bridge);
      if (spec.bridge.includes('.')) throw new Error(`${spec.bridge} is a tap name, not a bridge`);
      const subnet = parseSubnet(spec.subnet);
      const files = dnsmasqFiles(this.opts.runDir, spec.id);
      const args = dnsmasqArgs(spec, files); // validates the rest before anything changes
      this.ensureRunDir();

      const created = await this.links.ensureBridge(spec.bridge, spec.gateway, subnet.prefix);
      if (created) undo.push(() => this.links.remove(spec.bridge));
      writeSysctl(path.join(this.sysNet, 'ipv4/conf', spec.bridge, 'route_localnet'), '1');
      if (spec.type === 'nat') writeSysctl(path.join(this.sysNet, 'ipv4/ip_forward'), '1');

      const hadHosts = fs.existsSync(files.hosts);
      writeAtomic(files.hosts, hostsFileText(spec.hosts), 0o644);
      if (!hadHosts) undo.push(() => fs.rmSync(files.hosts, { force: true }));

      let pid = runningDnsmasq(files);
      if (pid !== null && created) {
        // It was bound to a bridge that is gone (--bind-interfaces does not follow a new one): restarted.
        await stopDnsmasq(pid, files);
        pid = null;
      }
      if (pid !== null) {
        signalOurs(pid, files, 'SIGHUP'); // adopted: re-read the hosts just written
      } else {
        fs.rmSync(files.pid, { force: true });
        const hadLeases = fs.existsSync(files.leases);
        undo.push(() => {
          fs.rmSync(files.pid, { force: true });
          if (!hadLeases) fs.rmSync(files.leases, { force: true });
        });
        const r = await run(this.dnsmasq!, args, { timeoutMs: TIMEOUT_MS }).catch((err: Error) => ({ code: -1, stdout: '', stderr: err.message }));
        pid = runningDnsmasq(files);
        if (pid !== null) {
          const started = pid;
          undo.push(() => stopDnsmasq(started, files));
        }
        if (r.code !== 0 || pid === null) throw new Error(`dnsmasq: ${r.stderr.trim() || `exited with ${r.code}, no pid file`}`);
      }
      this.specs.set(spec.id, spec);
    } catch (err) {
      for (const u of undo.reverse()) {
        try {
          await u();
        } catch (e) {
          this.opts.log.warn({ network: spec.name, err: errorMessage(e) }, 'undoing a failed network setup');
        }
      }
      throw setupFailed(`Cannot set up network ${spec.name}`, err);
    }
  }

  down(spec: { id: string; bridge: string }): Promise<void> {
    return this.serial(async () => {
      try {
        await this.downNow(spec.id, spec.bridge);
      } catch (err) {
        throw setupFailed(`Cannot take network ${spec.bridge} down`, err);
      }
    });
  }

  private async downNow(id: string, bridge: string | null): Promise<void> {
    const files = dnsmasqFiles(this.opts.runDir, id);
    const pid = runningDnsmasq(files);
    if (pid !== null) await stopDnsmasq(pid, files);
    if (bridge !== null) {
      ourLink(bridge);
      for (const l of await this.links.ourLinks()) if (l.master === bridge && isOurTapName(l.name)) await this.links.remove(l.name);
      await this.links.remove(bridge);
    }
    for (const f of [files.pid, files.leases, files.hosts]) fs.rmSync(f, { force: true });
    this.specs.delete(id);
  }

  setHosts(id: string, hosts: readonly NetworkHost[]): Promise<void> {
    return this.serial(() => {
      try {
        const files = dnsmasqFiles(this.opts.runDir, id);
        writeAtomic(files.hosts, hostsFileText(hosts), 0o644);
        const spec = this.specs.get(id);
        if (spec) this.specs.set(id, { ...spec, hosts: [...hosts] });
        const pid = runningDnsmasq(files);
        if (pid !== null) signalOurs(pid, files, 'SIGHUP');
        return Promise.resolve();
      } catch (err) {
        return Promise.reject(setupFailed('Cannot update the network addresses', err));
      }
    });
  }

  applyRules(networks: readonly ManagedNetworkSpec[], forwards: readonly DnatForward[]): Promise<void> {
    return this.serial(() => this.applyNow(networks, forwards));
  }

  private async applyNow(networks: readonly ManagedNetworkSpec[], forwards: readonly DnatForward[]): Promise<void> {
    try {
      // Without root or nft nothing of ours can exist: no rules are no change.
      if (networks.length === 0 && forwards.length === 0 && !this.availability().available) return;
      this.needAvailable();
      const script = networkRules(networks, forwards);
      const r = await run(this.nft!, ['-f', '-'], { timeoutMs: TIMEOUT_MS, input: script }).catch((err: Error) => ({ code: -1, stderr: err.message }));
      if (r.code !== 0) throw new Error(`nft: ${r.stderr.trim() || `exited with ${r.code}`}`);
      this.forwards = [...forwards];
    } catch (err) {
      throw setupFailed('Cannot apply the network rules', err);
    }
  }

  leases(id: string): HostLease[] {
    const spec = this.specs.get(id);
    if (!spec || !spec.dhcp) return [];
    return parseLeases(readBounded(dnsmasqFiles(this.opts.runDir, id).leases), spec.subnet);
  }

  reconcile(networks: readonly HostNetworkSpec[], forwards: readonly DnatForward[], keepTaps: ReadonlyMap<string, string>): Promise<void> {
    return this.serial(async () => {
      const managed = networks.filter((n): n is ManagedNetworkSpec => n.type !== 'bridge');
      const avail = this.availability();
      if (!avail.available) {
        // Nothing of ours can exist on such a host; networks that need it stay down (the API says why).
        if (managed.length) this.opts.log.error({ reason: avail.reason, networks: managed.map((n) => n.name) }, 'networks cannot be brought up here');
        return;
      }
      for (const n of managed) {
        try {
          await this.upNow(n);
        } catch (err) {
          this.opts.log.error({ network: n.name, err: errorMessage(err) }, 'cannot bring a network back up');
        }
      }
      const bridges = new Set(managed.map((n) => n.bridge));
      for (const l of await this.links.ourLinks()) {
        const stale = isOurTapName(l.name) ? !keepTaps.has(l.name) : !bridges.has(l.name);
        const bridge = keepTaps.get(l.name);
        if (!stale && bridge !== undefined && l.master !== bridge) {
          // a running VM's tap whose bridge was made again: back onto it
          this.opts.log.info({ link: l.name, bridge }, 'putting a tap back on its bridge');
          await this.links.cmd(['link', 'set', l.name, 'master', bridge, 'up']).catch((err: Error) => this.opts.log.warn({ link: l.name, err: err.message }, 'cannot put a tap back on its bridge'));
        }
        if (!stale) continue;
        this.opts.log.info({ link: l.name }, 'removing a link of no network');
        await this.links.remove(l.name).catch((err: Error) => this.opts.log.warn({ link: l.name, err: err.message }, 'cannot remove a stale link'));
      }
      const ids = new Set(managed.map((n) => n.id));
      let entries: string[] = [];
      try {
        entries = fs.readdirSync(this.opts.runDir);
      } catch {
        /* no run dir yet */
      }
      const orphans = new Set(entries.map((e) => /^([A-Za-z0-9_-]{1,64})\.(pid|leases|hosts)$/.exec(e)?.[1]).filter((id): id is string => !!id && !ids.has(id)));
      for (const id of orphans) {
        this.opts.log.info({ network: id }, 'removing the dnsmasq of no network');
        await this.downNow(id, null);
      }
      await this.applyNow(managed, forwards);
    });
  }

  async portFree(protocol: 'tcp' | 'udp', address: string, port: number): Promise<boolean> {
    if (!Number.isInteger(port) || port < 1 || port > 65535) return false;
    const taken = this.forwards.some(
      (f) => f.protocol === protocol && f.hostPort === port && (f.hostAddress === address || f.hostAddress === '0.0.0.0' || address === '0.0.0.0'),
    );
    if (taken) return false;
    return protocol === 'tcp' ? tcpFree(address, port) : udpFree(address, port);
  }

  removeTableIfEmpty(): Promise<void> {
    return this.serial(async () => {
      if (!this.nft) return;
      const r = await run(this.nft, ['-j', 'list', 'table', 'inet', NFT_TABLE], { timeoutMs: TIMEOUT_MS }).catch(() => null);
      if (!r || r.code !== 0) return; // no table
      if (!tableRemovable(r.stdout, uidHasProcesses)) return;
      const del = await run(this.nft, ['delete', 'table', 'inet', NFT_TABLE], { timeoutMs: TIMEOUT_MS }).catch((err: Error) => ({ code: -1, stderr: err.message }));
      if (del.code !== 0) this.opts.log.warn({ err: del.stderr.trim() }, 'cannot remove the nftables table');
    });
  }

  // --- TapDevices ---
  // (serialized with reconcile, which removes the taps it is not told to keep)
  create(name: string, uid: number | null, bridge: string): Promise<void> {
    return this.serial(async () => {
      try {
        if (uid !== null) tunOpenToUsers();
        await this.links.createTap(name, uid, bridge);
      } catch (err) {
        throw setupFailed(`Cannot create the tap ${name}`, err);
      }
    });
  }

  remove(name: string): Promise<void> {
    return this.serial(async () => {
      try {
        ourLink(name);
        await this.links.remove(name);
      } catch (err) {
        throw setupFailed(`Cannot remove the tap ${name}`, err);
      }
    });
  }

  stats(name: string): { rxBytes: number; txBytes: number } | null {
    return this.links.tapStats(name);
  }
}

/**
 * Whether `nft -j list table inet qemu_manager` output shows nothing of anyone: no uid in
 * guest_uids that a process runs as (`running`) and no rule in a network chain (unit-tested). The
 * guest isolation's own rules are reinstalled at the next start.
 */
export function tableRemovable(json: string, running: (uid: number) => boolean): boolean {
  let doc: { nftables?: Array<Record<string, { name?: string; chain?: string; elem?: unknown[] }>> };
  try {
    doc = JSON.parse(json) as typeof doc;
  } catch {
    return false;
  }
  const netChains = new Set(NET_CHAINS.map(([n]) => n));
  for (const item of doc.nftables ?? []) {
    // a uid of the guest isolation's set that no process runs as cannot connect anywhere: it does
    // not hold the table (a QEMU or qemu-img started later puts its uid, and the table, back)
    if (item.set?.name === 'guest_uids' && (item.set.elem ?? []).some((u) => typeof u !== 'number' || running(u))) return false;
    if (item.rule && netChains.has(item.rule.chain ?? '')) return false;
  }
  return true;
}

function tcpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ host: address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

function udpFree(address: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = dgram.createSocket({ type: 'udp4' });
    s.once('error', () => {
      try {
        s.close();
      } catch {
        /* never bound */
      }
      resolve(false);
    });
    s.bind({ address, port, exclusive: true }, () => s.close(() => resolve(true)));
  });
}

/** The host network adapter: HostNetworks and TapDevices in one object. */
/**
 * QEMU runs as an unprivileged user and attaches to its tap by name, which opens /dev/net/tun.
 * udev makes that node 0666 on most hosts (the kernel then lets a process without CAP_NET_ADMIN
 * attach only to a tap its user owns, and create none); where it is 0600, it is made so, once.
 */
export function tunOpenToUsers(file = '/dev/net/tun'): void {
  const mode = fs.statSync(file).mode & 0o7777;
  if ((mode & 0o006) !== 0o006) fs.chmodSync(file, mode | 0o666);
}

export function createHostNetworks(opts: HostNetworksOptions): HostNetworks & TapDevices {
  return new LinuxHostNetworks(opts);
}
