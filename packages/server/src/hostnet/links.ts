/**
 * Links through iproute2 (`ip`, argv arrays, a timeout on every call) and /sys: our bridges
 * `qm-<name>`, our taps `qm-<8 hex>.<slot>`, and what the host's own network looks like.
 * Every name of ours is checked (names.ts) before a command runs.
 */
import fs from 'node:fs';
import { run } from '../lib/exec.js';
import { formatSubnet, parseSubnet } from '../lib/ipv4.js';
import { isLinkName, isOurTapName, ourLink } from './names.js';

const TIMEOUT_MS = 10_000;

/** A failed host command, with what the host said. */
export class HostCommandError extends Error {}

export class Links {
  constructor(private readonly ip: string) {}

  /** Runs `ip …`; throws HostCommandError with its stderr when it fails. */
  async cmd(args: readonly string[]): Promise<string> {
    const r = await run(this.ip, args, { timeoutMs: TIMEOUT_MS }).catch((err: Error) => ({ code: -1, signal: null, stdout: '', stderr: err.message }));
    if (r.code !== 0) throw new HostCommandError(`ip ${args.join(' ')}: ${r.stderr.trim() || (r.signal ? `killed (${r.signal})` : `exited with ${r.code}`)}`);
    return r.stdout;
  }

  private async json(args: readonly string[]): Promise<unknown[]> {
    const out = await this.cmd(['-j', ...args]);
    const v: unknown = JSON.parse(out.trim() || '[]');
    return Array.isArray(v) ? (v as unknown[]) : [];
  }

  exists(name: string): boolean {
    return isLinkName(name) && fs.existsSync(`/sys/class/net/${name}`);
  }

  /** True when `name` is an existing Linux bridge that is not one of ours. */
  isHostBridge(name: string): boolean {
    if (!isLinkName(name) || name.startsWith('qm-')) return false;
    return fs.existsSync(`/sys/class/net/${name}/bridge`);
  }

  /** Our links: name, kind ('bridge', 'tun', …) and the bridge it is a port of. */
  async ourLinks(): Promise<Array<{ name: string; kind: string | null; master: string | null }>> {
    const links = (await this.json(['-d', 'link', 'show'])) as Array<{ ifname?: string; master?: string; linkinfo?: { info_kind?: string } }>;
    return links
      .filter((l) => typeof l.ifname === 'string' && l.ifname.startsWith('qm-'))
      .map((l) => ({ name: l.ifname!, kind: l.linkinfo?.info_kind ?? null, master: l.master ?? null }));
  }

  /**
   * Makes the bridge with the gateway address, STP off, up. Returns whether this call created it.
   * An existing link of that name must be a bridge.
   */
  async ensureBridge(name: string, gateway: string, prefix: number): Promise<boolean> {
    ourLink(name);
    let created = false;
    if (!this.exists(name)) {
      await this.cmd(['link', 'add', name, 'type', 'bridge', 'stp_state', '0']);
      created = true;
    } else if (!fs.existsSync(`/sys/class/net/${name}/bridge`)) {
      throw new HostCommandError(`${name} exists and is not a bridge`);
    }
    await this.cmd(['addr', 'replace', `${gateway}/${prefix}`, 'dev', name]);
    await this.cmd(['link', 'set', name, 'up']);
    return created;
  }

  async remove(name: string): Promise<void> {
    ourLink(name);
    if (!this.exists(name)) return;
    await this.cmd(['link', 'del', name]).catch((err: Error) => {
      if (this.exists(name)) throw err;
    });
  }

  /** The IPv4 subnets of the host's addresses and routes, loopback, defaults and our bridges left out. */
  async hostSubnets(): Promise<string[]> {
    const seen = new Set<string>();
    const add = (text: string, strict: boolean) => {
      try {
        seen.add(formatSubnet(parseSubnet(text.includes('/') ? text : `${text}/32`, strict)));
      } catch {
        /* not IPv4 */
      }
    };
    const addrs = (await this.json(['-4', 'addr', 'show'])) as Array<{ ifname?: string; addr_info?: Array<{ local?: string; prefixlen?: number }> }>;
    for (const a of addrs) {
      if (!a.ifname || a.ifname === 'lo' || a.ifname.startsWith('qm-')) continue;
      for (const i of a.addr_info ?? []) if (i.local && typeof i.prefixlen === 'number') add(`${i.local}/${i.prefixlen}`, false);
    }
    const routes = (await this.json(['-4', 'route', 'show', 'table', 'all'])) as Array<{ dst?: string; dev?: string; type?: string }>;
    for (const r of routes) {
      if (!r.dst || r.dst === 'default' || r.dev === 'lo' || r.dev?.startsWith('qm-')) continue;
      if (r.type && r.type !== 'unicast') continue;
      add(r.dst, false);
    }
    return [...seen].sort();
  }

  /** Creates the tap owned by `uid` (null: root), a port of `bridge`, up; a stale one of that name is replaced. */
  async createTap(name: string, uid: number | null, bridge: string): Promise<void> {
    if (!isOurTapName(name)) throw new HostCommandError(`Refusing the tap name ${JSON.stringify(name)}: not one of this server's`);
    if (!isLinkName(bridge)) throw new HostCommandError(`not an interface name: ${bridge}`);
    if (uid !== null && !(Number.isInteger(uid) && uid >= 0)) throw new HostCommandError(`not a uid: ${uid}`);
    await this.remove(name);
    await this.cmd(['tuntap', 'add', 'dev', name, 'mode', 'tap', ...(uid === null ? [] : ['user', String(uid)])]);
    try {
      await this.cmd(['link', 'set', name, 'master', bridge, 'up']);
    } catch (err) {
      await this.remove(name).catch(() => undefined);
      throw err;
    }
  }

  /** The tap's counters seen from the guest: what the tap sent is what the guest received. */
  tapStats(name: string): { rxBytes: number; txBytes: number } | null {
    if (!isOurTapName(name)) return null;
    try {
      const read = (f: string) => Number(fs.readFileSync(`/sys/class/net/${name}/statistics/${f}`, 'utf8').trim());
      const tapRx = read('rx_bytes');
      const tapTx = read('tx_bytes');
      if (!Number.isFinite(tapRx) || !Number.isFinite(tapTx)) return null;
      return { rxBytes: tapTx, txBytes: tapRx };
    } catch {
      return null;
    }
  }
}

/** Writes a /proc/sys value (e.g. route_localnet of a bridge, ip_forward). */
export function writeSysctl(file: string, value: string): void {
  fs.writeFileSync(file, value);
}
