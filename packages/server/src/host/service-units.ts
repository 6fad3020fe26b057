import fs from 'node:fs';
import path from 'node:path';

export const SERVER_UNIT = 'qemu-manager.service';
export const GUESTS_UNIT = 'qemu-manager-guests.service';
/** Where the units read their environment (on the target host; under `--root` when given). */
export const ENV_FILE = '/etc/qemu-manager/env';
const UNIT_DIR = '/etc/systemd/system';

export interface UnitOptions {
  /** The user the server runs as; root (no `User=`) when null: QEMU then runs as the pooled qm-vm-N users. */
  user: string | null;
  /** Absolute path of node. */
  node: string;
  /** Absolute paths of the built server and admin CLI. */
  serverMain: string;
  cliMain: string;
  /** The checkout (working directory). */
  workDir: string;
}

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/** A value systemd takes in ExecStart/WorkingDirectory as one word: refused when it would not be. */
function word(what: string, value: string): string {
  if (!path.isAbsolute(value) || /[\s"'\\$%;]/.test(value)) throw new Error(`${what} must be an absolute path without spaces, quotes, $, % or ;: ${JSON.stringify(value)}`);
  return value;
}

function userLine(user: string | null): string[] {
  if (user === null) return [];
  if (!USER_NAME.test(user)) throw new Error(`--user must be a user name, got ${JSON.stringify(user)}`);
  return [`User=${user}`];
}

/**
 * The server's unit. `KillMode=process`: a restart or stop signals node only, never the QEMUs it
 * started (they keep running and are adopted by the next start); `Restart=on-failure` brings a
 * crashed server back.
 */
export function serverUnit(o: UnitOptions): string {
  return [
    '[Unit]',
    'Description=QEMU Manager (the VMs keep running when it stops or restarts)',
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    ...userLine(o.user),
    `EnvironmentFile=${ENV_FILE}`,
    `WorkingDirectory=${word('the checkout', o.workDir)}`,
    `ExecStart=${word('node', o.node)} ${word('the server', o.serverMain)}`,
    'Restart=on-failure',
    'RestartSec=2s',
    'KillMode=process',
    'TimeoutStopSec=30s',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/**
 * The guests' unit, like libvirt-guests: active from boot (`RemainAfterExit`), its stop runs the
 * host shutdown of every VM. Ordered after the server and the network, so at host shutdown or
 * reboot it stops first, while both are still up. `Wants=` (not `Requires=`): a restart of the
 * server does not stop it. `ON_HOST_SHUTDOWN=keep` in the env file makes the stop do nothing.
 */
export function guestsUnit(o: UnitOptions): string {
  return [
    '[Unit]',
    'Description=QEMU Manager: shut the VMs down before the host powers off',
    `Wants=network-online.target ${SERVER_UNIT}`,
    `After=network-online.target ${SERVER_UNIT}`,
    '',
    '[Service]',
    'Type=oneshot',
    'RemainAfterExit=yes',
    ...userLine(o.user),
    `EnvironmentFile=${ENV_FILE}`,
    `WorkingDirectory=${word('the checkout', o.workDir)}`,
    'ExecStart=/bin/true',
    `ExecStop=${word('node', o.node)} ${word('the admin CLI', o.cliMain)} host shutdown-vms`,
    // The guests' timeout (SHUTDOWN_TIMEOUT, at most 3600 s) plus the power-offs after it.
    'TimeoutStopSec=65min',
    '',
    '[Install]',
    'WantedBy=multi-user.target',
    '',
  ].join('\n');
}

/** The env file written when there is none (never overwritten: it is the admin's). */
export function envTemplate(): string {
  return [
    '# QEMU Manager service environment (see README "Configuration").',
    'DATA_DIR=/var/lib/qemu-manager',
    'HOST=127.0.0.1',
    'PORT=5000',
    '# At host shutdown or reboot: "shutdown" (ACPI, then power-off after SHUTDOWN_TIMEOUT s) or "keep" (do nothing).',
    'ON_HOST_SHUTDOWN=shutdown',
    'SHUTDOWN_TIMEOUT=120',
    '',
  ].join('\n');
}

/** Runs a command (systemctl); throws when it fails. */
export type Runner = (cmd: string, args: string[]) => void;

/**
 * Writes both units (and the env file when missing) under `root`. With `root` '/', reloads systemd
 * and enables them, and starts the guests' unit (a no-op start; only its stop acts). Under another
 * root nothing else is touched and systemctl is not called (`live` says which; tests set it). Returns the files written.
 */
export function installUnits(root: string, o: UnitOptions, run: Runner, live = path.resolve(root) === '/'): string[] {
  const unitDir = path.join(root, UNIT_DIR);
  const envFile = path.join(root, ENV_FILE);
  fs.mkdirSync(unitDir, { recursive: true, mode: 0o755 });
  fs.mkdirSync(path.dirname(envFile), { recursive: true, mode: 0o755 });
  const written: string[] = [];
  for (const [name, text] of [
    [SERVER_UNIT, serverUnit(o)],
    [GUESTS_UNIT, guestsUnit(o)],
  ] as const) {
    const file = path.join(unitDir, name);
    const tmp = `${file}.tmp`;
    fs.writeFileSync(tmp, text, { mode: 0o644 });
    fs.chmodSync(tmp, 0o644); // whatever the umask
    fs.renameSync(tmp, file);
    written.push(file);
  }
  if (!fs.existsSync(envFile)) {
    fs.writeFileSync(envFile, envTemplate(), { mode: 0o600, flag: 'wx' });
    written.push(envFile);
  }
  if (live) {
    run('systemctl', ['daemon-reload']);
    run('systemctl', ['enable', SERVER_UNIT, GUESTS_UNIT]);
    run('systemctl', ['start', GUESTS_UNIT]);
  }
  return written;
}

/**
 * Undoes installUnits: with root '/', disables both units first (stopping neither: the server and
 * the VMs keep running, and stopping the guests' unit would shut the VMs down), then removes the unit
 * files and reloads systemd. The env file stays (it is the admin's). Returns the files removed.
 */
export function uninstallUnits(root: string, run: Runner, live = path.resolve(root) === '/'): string[] {
  if (live) run('systemctl', ['disable', SERVER_UNIT, GUESTS_UNIT]);
  const removed: string[] = [];
  for (const name of [SERVER_UNIT, GUESTS_UNIT]) {
    const file = path.join(root, UNIT_DIR, name);
    if (fs.existsSync(file)) {
      fs.rmSync(file);
      removed.push(file);
    }
  }
  if (live) run('systemctl', ['daemon-reload']);
  return removed;
}
