// "From nothing to a running OS" row (issue 12): time from `POST /api/vms` with an image and a
// cloud-init config until the guest prints its cloud-init marker on serial, against doing the same
// by hand: a qcow2 overlay on the image (qemu-img create), a NoCloud seed (xorriso), QEMU with both.
// The image is the test guest (test/guest/) as a qcow2 disk: its /init reads a `cidata` CD-ROM and
// runs the `runcmd` lines, the same way for both sides. Interleaved, after one warm-up each.
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { serialLog } from '../test/kit/index.mjs';
import { log, onCleanup, results } from './context.mjs';
import { alive, api, fmt, median, nowMs, sleep, waitFor } from './lib.mjs';
import { putFile, testGuestIso } from './storage.mjs';

const RUNS = (() => {
  const v = Number.parseInt(process.env.BENCH_CLOUD_RUNS ?? '', 10);
  return Number.isInteger(v) && v > 0 && v <= 10 ? v : 3;
})();
const MEMORY_MIB = 256;
const MARKER = 'BENCH_CLOUD_INIT_DONE';

const userData = (run) => `#cloud-config\nruncmd:\n  - echo ${MARKER} ${run}\n`;

function run(cmd, args) {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed: ${(r.stderr || r.stdout).trim()}`);
}

/** The accelerator the server uses too: KVM only when a real kvm module is loaded. */
function accel() {
  if (process.env.ACCEL === 'kvm' || process.env.ACCEL === 'tcg') return process.env.ACCEL;
  const kvm = fs.existsSync('/dev/kvm') && (fs.existsSync('/sys/module/kvm_intel') || fs.existsSync('/sys/module/kvm_amd'));
  return kvm ? 'kvm' : 'tcg';
}

/** The same work by hand: overlay, seed, QEMU; ms until the marker is on serial. */
async function byHand(image, work, i) {
  const dir = path.join(work, `hand-${i}`);
  fs.mkdirSync(path.join(dir, 'seed'), { recursive: true });
  const serial = path.join(dir, 'serial.log');
  const t0 = nowMs();
  const overlay = path.join(dir, 'disk.qcow2');
  run('qemu-img', ['create', '-q', '-f', 'qcow2', '-b', image, '-F', 'qcow2', overlay]);
  fs.writeFileSync(path.join(dir, 'seed', 'user-data'), userData(`hand-${i}`));
  fs.writeFileSync(path.join(dir, 'seed', 'meta-data'), `instance-id: hand-${i}-${Date.now()}\nlocal-hostname: bench-hand\n`);
  const seed = path.join(dir, 'seed.iso');
  run('xorriso', ['-as', 'mkisofs', '-quiet', '-V', 'cidata', '-J', '-r', '-o', seed, path.join(dir, 'seed')]);
  const a = accel();
  const qemu = spawn('qemu-system-x86_64', [
    '-machine', 'q35', '-accel', a, '-cpu', a === 'kvm' ? 'host' : 'max', '-m', String(MEMORY_MIB), '-smp', '1',
    '-nodefaults', '-no-user-config', '-display', 'none',
    '-drive', `file=${overlay},format=qcow2,if=virtio`,
    '-drive', `file=${seed},format=raw,media=cdrom,readonly=on`,
    '-serial', `file:${serial}`,
  ], { stdio: 'ignore' });
  try {
    const seen = await waitFor(() => fs.existsSync(serial) && fs.readFileSync(serial, 'latin1').includes(`${MARKER} hand-${i}`), 180_000, 20);
    if (!seen) throw new Error(`by hand: no cloud-init marker: ${fs.existsSync(serial) ? fs.readFileSync(serial, 'latin1').slice(-400) : 'no serial log'}`);
    return nowMs() - t0;
  } finally {
    qemu.kill('SIGKILL');
    await waitFor(() => qemu.exitCode !== null || qemu.signalCode !== null || !alive(qemu.pid), 10_000, 10);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

async function waitTask(base, id) {
  for (;;) {
    const { task } = (await api(base, 'GET', `/api/tasks/${id}`)).body;
    if (task.status === 'succeeded') return task;
    if (task.status === 'failed' || task.status === 'cancelled') throw new Error(`task ${task.kind} ${task.status}: ${task.error}`);
    await sleep(10);
  }
}

/** Through the API: ms from POST /api/vms to the marker on serial (the VM and its disk removed after). */
async function viaApi(base, dataDir, i) {
  const name = `bench-cloud-${i}`;
  const t0 = nowMs();
  const created = await api(base, 'POST', '/api/vms', {
    name, cpus: 1, memory: MEMORY_MIB, image: 'bench-cloud',
    cloudInit: { hostname: 'bench-api', userData: userData(`api-${i}`) },
  }, 202);
  const task = await waitTask(base, created.body.task.id);
  const id = task.result.vm;
  await api(base, 'POST', `/api/vms/${id}/start`);
  try {
    const seen = await waitFor(() => serialLog(dataDir, id).includes(`${MARKER} api-${i}`), 180_000, 20);
    if (!seen) throw new Error(`API: no cloud-init marker: ${serialLog(dataDir, id).slice(-400)}`);
    return nowMs() - t0;
  } finally {
    await api(base, 'POST', `/api/vms/${id}/stop`).catch(() => {});
    const vm = (await api(base, 'GET', `/api/vms/${id}`)).body.vm;
    await api(base, 'DELETE', `/api/vms/${id}`);
    for (const d of vm.disks) if (d.diskId) await api(base, 'DELETE', `/api/disks/${d.diskId}`).catch(() => {});
  }
}

/** The cloud-image section (results.sections.cloudImage). */
export async function benchCloudImage(base, dataDir) {
  const S = (results.sections.cloudImage = { runs: RUNS, accel: accel() });
  const { iso, why } = testGuestIso();
  if (!iso) {
    S.skipped = why;
    log(`cloud-image row skipped: ${why}`);
    return;
  }
  const work = path.join(dataDir, 'bench-cloud');
  fs.mkdirSync(work, { recursive: true });
  onCleanup('cloud-image work dir', async () => fs.rmSync(work, { recursive: true, force: true }));
  // The test guest ISO is hybrid: as a disk it boots the same kernel and /init.
  const image = path.join(work, 'cloud.qcow2');
  run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', iso, image]);
  const up = await putFile(new URL('/api/images/upload/bench-cloud', base), image);
  if (up.status !== 201) throw new Error(`uploading the cloud image → ${up.status}: ${up.body.error}`);
  const stored = up.body.image;
  S.image = { virtualBytes: stored.virtualSize, bytes: stored.size };
  onCleanup('cloud image', async () => {
    await api(base, 'DELETE', '/api/images/bench-cloud').catch(() => {});
  });
  const out = { api: [], byHand: [] };
  await viaApi(base, dataDir, 0);
  await byHand(image, work, 0);
  for (let i = 1; i <= RUNS; i++) {
    if (i % 2 === 1) {
      out.api.push(await viaApi(base, dataDir, i));
      out.byHand.push(await byHand(image, work, i));
    } else {
      out.byHand.push(await byHand(image, work, i));
      out.api.push(await viaApi(base, dataDir, i));
    }
  }
  S.out = out;
  log(`cloud image + cloud-init → marker ms: api ${out.api.map((x) => fmt(x)).join(' ')} | by hand ${out.byHand.map((x) => fmt(x)).join(' ')}`);
  await api(base, 'DELETE', '/api/images/bench-cloud').catch(() => {});
}

/** The table rows (bench/table.mjs) for results.sections.cloudImage. */
export function cloudImageRows(c, add) {
  if (!c) return;
  if (c.out) {
    const a = median(c.out.api);
    const h = median(c.out.byHand);
    add(
      `New VM from an image + cloud-init: POST /api/vms → guest prints its cloud-init marker (${c.accel.toUpperCase()}, median of ${c.out.api.length}) vs overlay + seed + QEMU by hand`,
      `${fmt(a)} ms`,
      `${fmt(h)} ms`,
      `${fmt(h / a)}× (by hand / API)`,
      '(info)',
      '—',
    );
    const spread = (x) => `${fmt(Math.min(...x))}–${fmt(Math.max(...x))}`;
    add('  same, spread over runs (API; by hand)', `${spread(c.out.api)} ms`, `${spread(c.out.byHand)} ms`, '—', '(info)', '—');
  } else if (c.skipped) {
    add('New VM from an image + cloud-init', `skipped (${c.skipped})`, '—', '—', '—', '—');
  }
}
