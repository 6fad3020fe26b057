// Backup rows (issue 13): a full backup of a running VM's 1 GiB qcow2 disk (random data in every
// other MiB, 512 MiB allocated) through the API vs `qemu-img convert` of the same image by hand;
// an incremental backup after 1 % of that disk changed; the guest freeze window (no guest agent
// yet: no number). The VM runs the test guest (test/guest/) with the data disk as vda and a script
// disk as vdb: each time the CD medium comes or goes (the bench unmounts/mounts the ISO through the
// API) the guest writes 41 × 256 KiB of random data (10.25 MiB, 1 % of the disk, in 41 places,
// different ones each time) and says so on the serial log. A guest is needed for that: the VM's
// QMP socket is the server's (QEMU serves one QMP client at a time), so the bench cannot write
// through QEMU itself, and writing the file behind QEMU's back would corrupt it.
// Every API time runs from sending the request to the task.updated succeeded event.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { serialLog } from '../test/kit/index.mjs';
import { MiB, log, onCleanup, results } from './context.mjs';
import { api, fmt, median, waitFor } from './lib.mjs';
import { eventStream, makeSourceImage, putFile, runTask, testGuestIso, timed } from './storage.mjs';

const RUNS = (() => {
  const v = Number.parseInt(process.env.BENCH_BACKUP_RUNS ?? '', 10);
  return Number.isInteger(v) && v > 0 && v < 24 ? v : 3;
})();

/** 41 chunks of 256 KiB, 24 MiB apart; run r shifts them by r MiB (r < 24), so no run rewrites another's clusters. */
const SCRIPT = `
M=/dev/vda
medium() { [ "$(dd if=/dev/sr0 bs=2048 count=1 2>/dev/null | wc -c | tr -d ' ')" -gt 0 ]; }
state() { if medium; then echo 1; else echo 0; fi; }
last=$(state); r=0
echo "BENCH_WAITING"
while :; do
  cur=$(state)
  if [ "$cur" != "$last" ]; then
    last=$cur; r=$((r+1)); k=0
    while [ $k -lt 41 ]; do dd if=/dev/urandom of=$M bs=262144 seek=$((k*96 + r*4)) count=1 conv=notrunc,fsync 2>/dev/null; k=$((k+1)); done
    sync
    echo "BENCH_WROTE $r"
  fi
  sleep 1
done
`;

/** A raw 1 MiB script disk as the test guest reads it (test/guest/index.ts writeScriptDisk), converted to qcow2. */
function scriptDisk(file, work) {
  const image = Buffer.alloc(MiB);
  image.write('TESTGUEST_SCRIPT\n', 0, 'latin1');
  Buffer.from(SCRIPT, 'utf8').copy(image, 512);
  const raw = path.join(work, 'script.raw');
  fs.writeFileSync(raw, image, { mode: 0o600 });
  const r = spawnSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, file], { encoding: 'utf8' });
  fs.rmSync(raw, { force: true });
  if (r.status !== 0) throw new Error(`qemu-img convert (script disk) failed: ${r.stderr}`);
  fs.chmodSync(file, 0o600);
}

/** The backups section (results.sections.backup). */
export async function benchBackup(base, dataDir) {
  const S = (results.sections.backup = { runs: RUNS });
  S.freeze = 'no guest agent yet (issue 14): no freeze, no number';
  const { iso, why } = testGuestIso();
  if (!iso) {
    S.skipped = why;
    log(`backup rows skipped: ${why}`);
    return;
  }
  const work = path.join(dataDir, 'bench-backup');
  fs.mkdirSync(work, { recursive: true });
  const stream = eventStream(base);
  onCleanup('backup event stream', async () => stream.close());
  await stream.ready;
  try {
    const isoPath = path.join(dataDir, 'isos', 'testguest-backup.iso');
    fs.copyFileSync(iso, isoPath);
    const src = makeSourceImage(work);
    const up = await putFile(new URL('/api/disks/upload/bench-backup-src', base), src);
    if (up.status !== 201) throw new Error(`uploading the backup source → ${up.status}: ${up.body.error}`);
    fs.rmSync(src, { force: true });
    const disk = up.body.disk;
    const info = JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output=json', disk.path], { encoding: 'utf8' }).stdout);
    S.source = { virtualBytes: info['virtual-size'], allocatedBytes: info['actual-size'], format: disk.format };
    const script = path.join(dataDir, 'disks', 'bench-backup-script.qcow2');
    scriptDisk(script, work);

    const vm = (await api(base, 'POST', '/api/vms', { name: 'bench-backup', cpus: 1, memory: 128 }, 201)).body.vm;
    await api(base, 'POST', `/api/vms/${vm.id}/disks/attach`, { diskPath: disk.path });
    await api(base, 'POST', `/api/vms/${vm.id}/disks/attach`, { diskPath: script, format: 'qcow2' });
    await api(base, 'POST', `/api/vms/${vm.id}/iso/mount`, { isoPath });
    await api(base, 'POST', `/api/vms/${vm.id}/start`);
    onCleanup('backup vm', async () => {
      await api(base, 'POST', `/api/vms/${vm.id}/stop`).catch(() => {});
    });
    const serial = () => serialLog(dataDir, vm.id);
    if (!(await waitFor(() => serial().includes('BENCH_WAITING'), 120_000, 100))) throw new Error(`the test guest did not start the bench script: ${serial().slice(-500)}`);

    let mounted = true;
    let wrote = 0;
    const change = async () => {
      await api(base, 'POST', `/api/vms/${vm.id}/iso/${mounted ? 'unmount' : 'mount'}`, mounted ? undefined : { isoPath });
      mounted = !mounted;
      wrote++;
      if (!(await waitFor(() => new RegExp(`BENCH_WROTE ${wrote}\\b`).test(serial()), 120_000, 50))) throw new Error(`the guest did not write change ${wrote}`);
    };
    const handOut = path.join(work, 'by-hand.qcow2');
    // -U: QEMU holds the image's lock; the guest writes nothing while this runs.
    const byHand = () => timed('qemu-img', ['convert', '-U', '-f', 'qcow2', '-O', 'qcow2', disk.path, handOut]).finally(() => fs.rmSync(handOut, { force: true }));
    const backup = async (mode) => {
      const t = await runTask(base, stream, 'POST', `/api/vms/${vm.id}/backups`, { mode });
      const id = t.task.result?.backup;
      const b = (await api(base, 'GET', `/api/backups/${id}`)).body.backup;
      if (b.kind !== mode) throw new Error(`asked for a ${mode} backup, got ${b.kind}: ${JSON.stringify(t.task.result?.notes)}`);
      return { ...t, id, sizeBytes: b.sizeBytes };
    };
    const remove = (id) => runTask(base, stream, 'DELETE', `/api/backups/${id}`);

    // Warm-up: both sides once (the image in the page cache for both).
    await byHand();
    await remove((await backup('full')).id);

    const out = { full: [], fullServer: [], byHand: [], incremental: [], incrementalServer: [], fullBytes: [], incrementalBytes: [] };
    for (let i = 0; i < RUNS; i++) {
      const full = async () => {
        const f = await backup('full');
        out.full.push(f.ms);
        out.fullServer.push(f.serverMs);
        out.fullBytes.push(f.sizeBytes);
        return f;
      };
      let f;
      if (i % 2 === 0) {
        f = await full();
        out.byHand.push(await byHand());
      } else {
        out.byHand.push(await byHand());
        f = await full();
      }
      await change();
      const inc = await backup('incremental');
      out.incremental.push(inc.ms);
      out.incrementalServer.push(inc.serverMs);
      out.incrementalBytes.push(inc.sizeBytes);
      await remove(inc.id);
      await remove(f.id);
    }
    S.out = out;
    const ms = (a) => a.map((x) => fmt(x)).join(' ');
    log(`backup full ms: api ${ms(out.full)} | qemu-img convert by hand ${ms(out.byHand)}; incremental after 1 % ms: ${ms(out.incremental)}`);
    await api(base, 'POST', `/api/vms/${vm.id}/stop`);
    await waitFor(async () => (await api(base, 'GET', `/api/vms/${vm.id}`)).body.vm.status === 'stopped', 60_000, 100);
  } finally {
    stream.close();
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** The table rows (bench/table.mjs) for results.sections.backup. */
export function backupRows(b, add, yes) {
  if (!b) return;
  if (b.out) {
    const o = b.out;
    const src = b.source;
    const GiB = 2 ** 30;
    const mibs = (ms) => src.virtualBytes / MiB / (ms / 1000);
    const api = median(o.full);
    const hand = median(o.byHand);
    const spread = (a) => `${fmt(Math.min(...a))}–${fmt(Math.max(...a))}`;
    add(
      `Full backup, running VM, ${fmt(src.virtualBytes / GiB)} GiB ${src.format} (${fmt(src.allocatedBytes / MiB)} MiB allocated), API → task done vs qemu-img convert by hand (median of ${o.full.length})`,
      `${fmt(api)} ms (${fmt(mibs(api))} MiB/s)`,
      `${fmt(hand)} ms (${fmt(mibs(hand))} MiB/s)`,
      `${fmt(hand / api)}× (by hand / API)`,
      '≥ 0.8×',
      yes(hand / api >= 0.8),
    );
    add('  same, spread over runs (API; by hand); the task\'s own createdAt → endedAt', `${spread(o.full)} ms; ${fmt(median(o.fullServer))} ms`, `${spread(o.byHand)} ms`, '—', '(info)', '—');
    const inc = median(o.incremental);
    add(
      `Incremental backup after 1 % of the disk changed (10.25 MiB by the guest), API → task done (median of ${o.incremental.length})`,
      `${fmt(inc)} ms`,
      `${fmt(api)} ms (the full backup)`,
      `${fmt((100 * inc) / api)} % of the full`,
      '≤ 10 %',
      yes(inc / api <= 0.1),
    );
    add('  same, spread; space taken, incremental vs full (median)', `${spread(o.incremental)} ms; ${fmt(median(o.incrementalBytes) / MiB)} MiB`, `${fmt(median(o.fullBytes) / MiB)} MiB`, '—', '(info)', '—');
  } else if (b.skipped) {
    add('Backup rows', `skipped (${b.skipped})`, '—', '—', '—', '—');
  }
  add('Guest freeze window (guest agent present)', 'no guest agent yet (issue 14): not measured', '—', '—', '(info)', '—');
}
