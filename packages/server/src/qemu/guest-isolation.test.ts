import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { GuestIsolation, isolationRules, loopbackResolvers } from './guest-isolation.js';

describe('loopbackResolvers', () => {
  it('keeps only loopback name servers', () => {
    const conf = '# x\nnameserver 127.0.0.53\nnameserver 192.0.2.1\n  nameserver ::1\nnameserver fe80::1\noptions edns0\n';
    expect(loopbackResolvers(conf)).toEqual(['127.0.0.53', '::1']);
  });
});

describe('isolationRules', () => {
  it('refuses new connections of the QEMU users to this host, with DNS to loopback resolvers only', () => {
    const rules = isolationRules(['127.0.0.53']);
    expect(rules).toContain('oif "lo" meta skuid @guest_uids ct direction original reject');
    expect(rules).toContain('ip daddr { 127.0.0.53 } meta l4proto { tcp, udp } th dport 53 accept');
    expect(rules).not.toContain('ip6 daddr');
    expect(isolationRules([])).not.toContain('dport 53');
  });

  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const hasTools = spawnSync('sh', ['-c', 'command -v nft && command -v ip'], { stdio: 'ignore' }).status === 0;
  it.runIf(root && hasTools)('is accepted by nft and refuses a listed uid, in a namespace of its own', () => {
    const ns = `qmt-${crypto.randomBytes(3).toString('hex')}`;
    const sh = (...a: string[]) => spawnSync('ip', ['netns', 'exec', ns, ...a], { encoding: 'utf8', input: '' });
    expect(spawnSync('ip', ['netns', 'add', ns]).status).toBe(0);
    try {
      sh('ip', 'link', 'set', 'lo', 'up');
      const applied = spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: isolationRules(['127.0.0.53']), encoding: 'utf8' });
      expect(applied.stderr).toBe('');
      // Applying twice replaces the rules instead of adding a second copy.
      spawnSync('ip', ['netns', 'exec', ns, 'nft', '-f', '-'], { input: isolationRules(['127.0.0.53']), encoding: 'utf8' });
      expect(sh('nft', 'add', 'element', 'inet', 'qemu_manager', 'guest_uids', '{ 65534 }').status).toBe(0);
      const listed = sh('nft', 'list', 'chain', 'inet', 'qemu_manager', 'guest_output').stdout;
      expect(listed.match(/reject/g)).toHaveLength(1);
      // A listener as root; a connection as uid 65534 is refused, one as root is not.
      const probe = `
        const net = require('node:net');
        const srv = net.createServer((s) => s.destroy()).listen(0, '127.0.0.1', () => {
          const port = srv.address().port;
          const { spawnSync } = require('node:child_process');
          const client = "require('node:net').connect(" + port + ", '127.0.0.1').on('connect', () => { console.log('OPEN'); process.exit(0); }).on('error', (e) => { console.log(e.code); process.exit(0); })";
          const as = (uid) => spawnSync(process.execPath, ['-e', client], { uid, gid: uid, encoding: 'utf8' }).stdout.trim();
          console.log(JSON.stringify({ nobody: as(65534), root: as(0) }));
          srv.close();
        });`;
      const out = sh(process.execPath, '-e', probe).stdout.trim();
      expect(JSON.parse(out)).toEqual({ nobody: 'ECONNREFUSED', root: 'OPEN' });
    } finally {
      spawnSync('ip', ['netns', 'del', ns]);
    }
  });
});

describe('GuestIsolation', () => {
  const log = { info: () => undefined, warn: () => undefined, error: () => undefined };
  const root = typeof process.getuid === 'function' && process.getuid() === 0;
  const who = { name: 'qm-vm-x', uid: 64000, gid: 64000 };

  it.runIf(root)('refuses to start a QEMU with a 422 when the rules cannot be installed, and says why in the status', async () => {
    const iso = await GuestIsolation.setUp({ setting: 'on', poolEnabled: true, nft: 'false' }, log);
    expect(iso.status.enforced).toBe(false);
    expect(iso.status.reason).toMatch(/could not be installed/);
    await expect(iso.confine(who)).rejects.toMatchObject({ code: 'QEMU_START_FAILED' });
    // An adopted QEMU that cannot be confined is reported, not hidden.
    await iso.confineAdopted(who);
    expect(iso.status.enforced).toBe(false);
  });

  it('GUEST_ISOLATION=off runs QEMUs unconfined and says so', async () => {
    const iso = await GuestIsolation.setUp({ setting: 'off', poolEnabled: true, nft: 'false' }, log);
    await expect(iso.confine(who)).resolves.toBeUndefined();
    expect(iso.status).toEqual({ enforced: false, reason: 'turned off (GUEST_ISOLATION=off)' });
  });
});
