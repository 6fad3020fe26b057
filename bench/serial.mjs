// Serial console row (issue 14): the echo round trip of one key typed into the test guest's serial
// shell (the tty echoes it back) through WS /api/vms/{id}/serial vs a direct connection to a QEMU
// serial socket. QEMU serves one client per socket chardev and the server holds the VM's, so the
// direct side is a second QEMU started by hand with the same guest, accelerator and memory and its
// serial port on a unix socket of the bench's own; each side types the same keys one at a time.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { WebSocket } from 'ws';
import { serialLog } from '../test/kit/index.mjs';
import { log, onCleanup, results } from './context.mjs';
import { api, fmt, median, nowMs, percentile, waitFor } from './lib.mjs';
import { testGuestIso } from './storage.mjs';

const KEYS = 200;
const READY = 'TESTGUEST_READY';

/**
 * Types KEYS keys one at a time on `send`, each after the previous echo came back; returns the
 * round trips (ms). `onData` registers the output listener.
 */
async function echoRounds(send, onData) {
  let pending = null;
  onData((chunk) => {
    if (pending && chunk.includes(pending.key)) {
      const p = pending;
      pending = null;
      p.resolve(nowMs() - p.t0);
    }
  });
  // A fresh line first (the prompt), then the keys.
  send(Buffer.from('\r'));
  await new Promise((r) => setTimeout(r, 500));
  const times = [];
  for (let i = 0; i < KEYS; i++) {
    const key = String.fromCharCode(97 + (i % 26));
    const rt = await new Promise((resolve, reject) => {
      pending = { key: Buffer.from(key), t0: nowMs(), resolve };
      setTimeout(() => reject(new Error(`no echo of key ${i}`)), 10_000).unref();
      send(Buffer.from(key));
    });
    times.push(rt);
  }
  send(Buffer.from('\x15')); // kill the typed line
  return times;
}

/** The serial row (results.sections.serial). */
export async function benchSerial(base, dataDir) {
  const S = (results.sections.serial = { keys: KEYS });
  const { iso, why } = testGuestIso();
  if (!iso) return void (S.skipped = why);
  const health = await api(base, 'GET', '/api/health');
  const accel = health.body.accel === 'kvm' ? 'kvm' : 'tcg';
  const isoPath = path.join(dataDir, 'isos', 'testguest-serial.iso');
  fs.copyFileSync(iso, isoPath);
  const vm = (await api(base, 'POST', '/api/vms', { name: 'bench-serial', cpus: 1, memory: 256 }, 201)).body.vm;
  await api(base, 'POST', `/api/vms/${vm.id}/iso/mount`, { isoPath });
  await api(base, 'POST', `/api/vms/${vm.id}/start`);
  onCleanup('serial VM', () => api(base, 'POST', `/api/vms/${vm.id}/stop`).catch(() => {}));
  const work = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-bench-serial-'));
  onCleanup('serial work dir', () => fs.rmSync(work, { recursive: true, force: true }));
  try {
    if (!(await waitFor(() => serialLog(dataDir, vm.id).includes(READY), 120_000, 100))) throw new Error('the guest did not reach READY');
    log('serial: echo round trips through WS /api/vms/{id}/serial…');
    const ticket = (await api(base, 'POST', `/api/vms/${vm.id}/console`, { kind: 'serial' })).body.ticket;
    const ws = new WebSocket(`${base.replace(/^http/, 'ws')}/api/vms/${vm.id}/serial?ticket=${ticket}`);
    await new Promise((resolve, reject) => {
      ws.once('open', resolve);
      ws.once('error', reject);
    });
    S.ws = await echoRounds((b) => ws.send(b), (fn) => ws.on('message', (d) => fn(d)));
    ws.close();

    log('serial: echo round trips on a QEMU serial socket by hand…');
    const sock = path.join(work, 'serial.sock');
    const qemu = spawn(
      'qemu-system-x86_64',
      ['-accel', accel, '-cpu', accel === 'kvm' ? 'host' : 'max', '-m', '256', '-nodefaults', '-display', 'none', '-device', 'VGA',
        '-cdrom', isoPath, '-boot', 'd', '-chardev', `socket,id=s0,path=${sock},server=on,wait=off`, '-serial', 'chardev:s0'],
      { stdio: 'ignore', detached: true },
    );
    qemu.unref();
    onCleanup('serial QEMU by hand', () => {
      try {
        process.kill(qemu.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    });
    if (!(await waitFor(() => fs.existsSync(sock), 30_000, 20))) throw new Error('the QEMU by hand made no serial socket');
    const direct = await new Promise((resolve, reject) => {
      const c = net.connect({ path: sock }, () => resolve(c));
      c.once('error', reject);
    });
    direct.setNoDelay?.(true);
    let seen = '';
    const listeners = new Set();
    direct.on('data', (d) => {
      if (seen.length < 1 << 20) seen += d.toString('latin1');
      for (const l of listeners) l(d);
    });
    if (!(await waitFor(() => seen.includes(READY), 120_000, 100))) throw new Error('the guest by hand did not reach READY');
    S.direct = await echoRounds((b) => direct.write(b), (fn) => listeners.add(fn));
    direct.destroy();
    process.kill(qemu.pid, 'SIGKILL');
  } catch (err) {
    S.skipped = `failed: ${err.message}`;
  } finally {
    await api(base, 'POST', `/api/vms/${vm.id}/stop`).catch(() => {});
  }
}

/** The table row (bench/table.mjs) for results.sections.serial. */
export function serialRows(s, add, yes) {
  if (!s) return;
  if (s.ws && s.direct) {
    const w = median(s.ws);
    const d = median(s.direct);
    add(
      `Serial console echo round trip, one key (median of ${s.keys}): WS /api/vms/{id}/serial vs a direct QEMU socket`,
      `${fmt(w)} ms`,
      `${fmt(d)} ms`,
      `+${fmt(w - d)} ms`,
      '≤ direct + 2 ms',
      yes(w - d <= 2),
    );
    add('  same, p95', `${fmt(percentile(s.ws, 95))} ms`, `${fmt(percentile(s.direct, 95))} ms`, '—', '(info)', '—');
  } else add('Serial console echo round trip', `skipped (${s.skipped ?? 'no data'})`, '—', '—', '—', '—');
}
