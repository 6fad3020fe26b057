import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { GUESTS_UNIT, SERVER_UNIT, guestsUnit, installUnits, serverUnit, uninstallUnits, type UnitOptions } from './service-units.js';

const opts: UnitOptions = { user: null, node: process.execPath, serverMain: '/opt/qm/packages/server/dist/main.js', cliMain: '/opt/qm/packages/server/dist/cli.js', workDir: '/opt/qm' };
const lines = (text: string) => text.split('\n');

describe('service units', () => {
  it('the server unit restarts on failure, kills only node, waits for the network and reads the env file', () => {
    const u = lines(serverUnit(opts));
    for (const l of ['Restart=on-failure', 'KillMode=process', 'After=network-online.target', 'Wants=network-online.target', 'EnvironmentFile=/etc/qemu-manager/env', `ExecStart=${process.execPath} /opt/qm/packages/server/dist/main.js`, 'WorkingDirectory=/opt/qm', 'WantedBy=multi-user.target']) {
      expect(u).toContain(l);
    }
    expect(u.some((l) => l.startsWith('User='))).toBe(false);
    expect(lines(serverUnit({ ...opts, user: 'qm' }))).toContain('User=qm');
  });

  it('the guests unit stops before the server and the network (ordered after both) and runs the host shutdown', () => {
    const u = lines(guestsUnit(opts));
    expect(u).toContain(`After=network-online.target ${SERVER_UNIT}`);
    expect(u).toContain(`Wants=network-online.target ${SERVER_UNIT}`); // Wants, not Requires: a server restart does not stop it
    expect(u.some((l) => l.startsWith('Requires=') || l.startsWith('BindsTo=') || l.startsWith('PartOf='))).toBe(false);
    expect(u).toContain('Type=oneshot');
    expect(u).toContain('RemainAfterExit=yes');
    expect(u).toContain(`ExecStop=${process.execPath} /opt/qm/packages/server/dist/cli.js host shutdown-vms`);
  });

  it('refuses a user or a path that would not be one word in the unit', () => {
    expect(() => serverUnit({ ...opts, user: 'a b' })).toThrow(/--user/);
    expect(() => serverUnit({ ...opts, workDir: '/opt/my qm' })).toThrow(/without spaces/);
    expect(() => guestsUnit({ ...opts, cliMain: 'relative/cli.js' })).toThrow(/absolute/);
  });

  it('install under --root writes both units and the env file inside it only, calls no systemctl; uninstall removes the units', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-units-'));
    try {
      const calls: string[] = [];
      const written = installUnits(root, opts, (c, a) => calls.push([c, ...a].join(' ')));
      const unitDir = path.join(root, 'etc/systemd/system');
      expect(written.sort()).toEqual([path.join(root, 'etc/qemu-manager/env'), path.join(unitDir, GUESTS_UNIT), path.join(unitDir, SERVER_UNIT)].sort());
      expect(calls).toEqual([]);
      expect(fs.readFileSync(path.join(unitDir, SERVER_UNIT), 'utf8')).toBe(serverUnit(opts));
      expect(fs.statSync(path.join(unitDir, SERVER_UNIT)).mode & 0o777).toBe(0o644);
      expect(fs.statSync(path.join(root, 'etc/qemu-manager/env')).mode & 0o777).toBe(0o600);
      expect(fs.readFileSync(path.join(root, 'etc/qemu-manager/env'), 'utf8')).toMatch(/^ON_HOST_SHUTDOWN=shutdown$/m);
      // A second install keeps the admin's env file.
      fs.writeFileSync(path.join(root, 'etc/qemu-manager/env'), 'ON_HOST_SHUTDOWN=keep\n');
      expect(installUnits(root, opts, () => undefined)).toHaveLength(2);
      expect(fs.readFileSync(path.join(root, 'etc/qemu-manager/env'), 'utf8')).toBe('ON_HOST_SHUTDOWN=keep\n');
      expect(uninstallUnits(root, (c, a) => calls.push([c, ...a].join(' ')))).toHaveLength(2);
      expect(calls).toEqual([]);
      expect(fs.readdirSync(unitDir)).toEqual([]);
      expect(fs.existsSync(path.join(root, 'etc/qemu-manager/env'))).toBe(true);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  it('install on the live root reloads systemd, enables both units and starts the guests one; uninstall disables, removes, reloads', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-units-live-'));
    try {
      const calls: string[] = [];
      const run = (c: string, a: string[]) => calls.push([c, ...a].join(' '));
      installUnits(root, opts, run, true);
      expect(calls).toEqual(['systemctl daemon-reload', `systemctl enable ${SERVER_UNIT} ${GUESTS_UNIT}`, `systemctl start ${GUESTS_UNIT}`]);
      calls.length = 0;
      uninstallUnits(root, (c, a) => {
        calls.push([c, ...a].join(' '));
        // disable runs while the files are still there; the reload after they are gone
        expect(fs.existsSync(path.join(root, 'etc/systemd/system', SERVER_UNIT))).toBe(a[0] === 'disable');
      }, true);
      expect(calls).toEqual([`systemctl disable ${SERVER_UNIT} ${GUESTS_UNIT}`, 'systemctl daemon-reload']);
      expect(calls.some((c) => c.includes('stop'))).toBe(false); // stopping the guests unit would shut the VMs down
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });

  const analyze = spawnSync('systemd-analyze', ['--version']);
  it.skipIf(analyze.error !== undefined)('systemd-analyze verify accepts both written units', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-units-verify-'));
    try {
      // Real paths for what verify checks (ExecStart's binary): node, and this checkout's files.
      const real: UnitOptions = { ...opts, serverMain: path.resolve('packages/server/dist/main.js'), cliMain: path.resolve('packages/server/dist/cli.js'), workDir: path.resolve('.') };
      installUnits(root, real, () => undefined);
      const files = [SERVER_UNIT, GUESTS_UNIT].map((n) => path.join(root, 'etc/systemd/system', n));
      const r = spawnSync('systemd-analyze', ['verify', ...files], { encoding: 'utf8' });
      const complaints = (r.stderr + r.stdout).split('\n').filter((l) => l.includes(SERVER_UNIT) || l.includes(GUESTS_UNIT));
      expect(complaints).toEqual([]);
      expect(r.status).toBe(0);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  });
});
