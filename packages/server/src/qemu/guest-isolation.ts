import fs from 'node:fs';
import net from 'node:net';
import { AppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import type { QemuIdentity } from './identity.js';
import type { Logger } from '../lib/log.js';

/**
 * Keeps guests away from the host's own services.
 *
 * QEMU's user-mode network makes every connection of a guest from inside the QEMU process: the
 * guest's gateway 10.0.2.2 becomes the host's 127.0.0.1, and any other address the host owns is
 * reached as well. So the rule is kept in the kernel, keyed on who the packet comes from: every
 * QEMU runs as an unprivileged user of its own, and an nftables output rule refuses any new
 * connection from those users to a local address (everything the host sends to itself leaves
 * through `lo`, whichever of its addresses it targets). Answers to connections that came in (a
 * port forward listening in QEMU) are replies, not new connections, and pass. The host's DNS
 * resolver on loopback (from /etc/resolv.conf) stays reachable on port 53, so user-mode DNS works
 * on hosts with a local resolver.
 *
 * The rules live in the table `inet qemu_manager` (chain `guest_output`, set `guest_uids`), are
 * replaced atomically with `nft -f`, and uids are added to the set before their QEMU starts.
 */
const NFT_TABLE = 'qemu_manager';

interface IsolationStatus {
  /** True when guests of this server are kept from host services. */
  enforced: boolean;
  /** Why not, or how. */
  reason: string;
}

type IsolationSetting = 'on' | 'off';

/** The rule set as `nft -f` input; pure, unit-tested. */
export function isolationRules(resolvers: readonly string[]): string {
  const v4 = resolvers.filter((r) => net.isIPv4(r));
  const v6 = resolvers.filter((r) => net.isIPv6(r));
  const dns = [
    ...(v4.length ? [`ip daddr { ${v4.join(', ')} }`] : []),
    ...(v6.length ? [`ip6 daddr { ${v6.join(', ')} }`] : []),
  ].map((d) => `    oif "lo" meta skuid @guest_uids ct direction original ${d} meta l4proto { tcp, udp } th dport 53 accept`);
  return [
    `table inet ${NFT_TABLE} {`,
    '  set guest_uids { type uid; }',
    '  chain guest_output { type filter hook output priority filter; policy accept; }',
    '}',
    `flush chain inet ${NFT_TABLE} guest_output`,
    `table inet ${NFT_TABLE} {`,
    '  chain guest_output {',
    ...dns,
    '    oif "lo" meta skuid @guest_uids ct direction original reject',
    '  }',
    '}',
    '',
  ].join('\n');
}

/** Loopback name servers from resolv.conf (user-mode DNS forwards the guest's queries there). */
export function loopbackResolvers(resolvConf: string): string[] {
  const out: string[] = [];
  for (const line of resolvConf.split('\n')) {
    const m = line.match(/^\s*nameserver\s+(\S+)/);
    const a = m?.[1];
    if (a && ((net.isIPv4(a) && a.startsWith('127.')) || a === '::1')) out.push(a);
  }
  return out;
}

type Mode = 'off' | 'impossible' | 'failed' | 'root-qemu' | 'on';

export class GuestIsolation {
  private warnedUnconfined = false;
  /** Why the last attempt to (re)apply the rules failed, while mode is 'failed'. */
  private failure = '';
  /** uids that could not be put in the set (adopted QEMUs): guests that are not isolated. */
  private readonly unconfined = new Set<number>();

  private constructor(
    private mode: Mode,
    private readonly nft: string,
    private readonly log: Logger,
  ) {}

  /**
   * Installs the rules when this server can (as root). `off` turns isolation off on purpose. When
   * the rules should be there but cannot be installed, QEMU starts are refused (see confine).
   * `poolEnabled`: QEMUs run as unprivileged users; without that the kernel cannot tell a QEMU from
   * the server, and guests are not isolated (said in the status and the log).
   */
  static async setUp(opts: { setting: IsolationSetting; poolEnabled: boolean; nft?: string }, log: Logger): Promise<GuestIsolation> {
    const nft = opts.nft ?? 'nft';
    if (opts.setting === 'off') {
      log.warn({}, 'GUEST_ISOLATION=off: guests can reach services on this host');
      return new GuestIsolation('off', nft, log);
    }
    if (typeof process.getuid === 'function' && process.getuid() !== 0) {
      log.warn({}, 'guests can reach services on this host: isolation needs the server to run as root');
      return new GuestIsolation('impossible', nft, log);
    }
    const iso = new GuestIsolation(opts.poolEnabled ? 'on' : 'root-qemu', nft, log);
    await iso.install();
    if (!opts.poolEnabled) log.warn({}, 'guests can reach services on this host: QEMU runs as root (QEMU_USER is empty)');
    return iso;
  }

  /** (Re)applies the rule set in one `nft -f`; on failure the mode says so and starts are refused. */
  private async install(): Promise<boolean> {
    let resolvConf = '';
    try {
      resolvConf = fs.readFileSync('/etc/resolv.conf', 'utf8');
    } catch {
      /* no resolver configured */
    }
    const r = await run(this.nft, ['-f', '-'], { timeoutMs: 10_000, input: isolationRules(loopbackResolvers(resolvConf)) }).catch((err: Error) => ({
      code: -1,
      stderr: err.message,
    }));
    if (r.code === 0) {
      if (this.mode === 'failed') this.mode = 'on';
      return true;
    }
    this.failure = r.stderr.trim() || `nft exited with ${r.code}`;
    this.log.error({ err: this.failure }, 'cannot install the nftables rules that keep guests off host services; VMs will not start');
    if (this.mode === 'on') this.mode = 'failed';
    return false;
  }

  /** Whether guests of this server are kept off host services, and how or why not (live). */
  get status(): IsolationStatus {
    switch (this.mode) {
      case 'off':
        return { enforced: false, reason: 'turned off (GUEST_ISOLATION=off)' };
      case 'impossible':
        return { enforced: false, reason: 'not possible: the server does not run as root' };
      case 'root-qemu':
        return { enforced: false, reason: 'not possible: QEMU runs as root (QEMU_USER is empty)' };
      case 'failed':
        return { enforced: false, reason: `nftables rules could not be installed: ${this.failure}` };
      case 'on':
        if (this.unconfined.size > 0) {
          return { enforced: false, reason: `QEMUs running as uid ${[...this.unconfined].join(', ')} could not be put under the rules` };
        }
        return { enforced: true, reason: `nftables table inet ${NFT_TABLE}: QEMU users cannot open connections to this host` };
    }
  }

  /**
   * Before a program runs as `identity` on guest or image data (and for a QEMU adopted at server
   * start): its uid is in the set, or a 422 says why not. The element is added every time (it is
   * idempotent and costs a few ms), so rules removed meanwhile (a firewall reload) are put back.
   */
  async confine(identity: QemuIdentity | null): Promise<void> {
    if (!identity) {
      if (!this.warnedUnconfined) this.log.warn({ reason: this.status.reason }, 'starting a QEMU that is not kept off host services');
      this.warnedUnconfined = true;
      return;
    }
    if (this.mode === 'off' || this.mode === 'impossible') return;
    const add = () => run(this.nft, ['add', 'element', 'inet', NFT_TABLE, 'guest_uids', `{ ${identity.uid} }`], { timeoutMs: 10_000 });
    let r = await add();
    if (r.code !== 0 && (await this.install())) r = await add();
    if (r.code !== 0) {
      const why = this.mode === 'failed' ? this.status.reason : `nft: ${r.stderr.trim() || `exited with ${r.code}`}`;
      throw new AppError('QEMU_START_FAILED', `Guests cannot be kept off this host's services (${why}); fix that, or set GUEST_ISOLATION=off`);
    }
    this.unconfined.delete(identity.uid);
  }

  /** A QEMU found running at server start: put its user under the rules; if that fails, health says so. */
  async confineAdopted(identity: QemuIdentity | null): Promise<void> {
    if (!identity) return;
    try {
      await this.confine(identity);
    } catch (err) {
      this.unconfined.add(identity.uid);
      this.log.error({ uid: identity.uid, err: String(err) }, 'a running QEMU could not be put under the guest isolation rules');
    }
  }
}
