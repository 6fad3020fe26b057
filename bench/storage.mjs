// Storage rows: a full clone of a 1 GiB qcow2 (half of it allocated with data) through the API vs
// `qemu-img convert` of the same image by hand; linked clone latency; the pause of a running
// 256 MiB guest during a snapshot with memory; disk upload throughput vs a bare node:http sink.
// Every time through the API runs from sending the request to the event that says it is done
// (task.updated succeeded, on /api/events), so it includes what a client waits for.
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { serialLog } from '../test/kit/index.mjs';
import { CFG, MiB, helper, log, onCleanup, results, root } from './context.mjs';
import { api, fmt, median, nowMs, summary, waitFor } from './lib.mjs';

const GiB = 1024 * MiB;
const DONE = new Set(['succeeded', 'failed', 'cancelled']);

/**
 * Follows GET /api/events: every event with its arrival time (nowMs). `next(pred, from)` resolves
 * with the first event at index >= `from` that matches.
 */
export function eventStream(base) {
  const events = [];
  const waiters = new Set();
  let req;
  const ready = new Promise((resolve, reject) => {
    req = http.get(new URL('/api/events', base), { headers: { accept: 'text/event-stream' } }, (res) => {
      if (res.statusCode !== 200) return reject(new Error(`GET /api/events → ${res.statusCode}`));
      resolve(); // subscribed before the answer's headers are written
      res.setEncoding('utf8');
      let buf = '';
      res.on('data', (s) => {
        const at = nowMs();
        buf += s;
        let i;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const data = block
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .map((l) => l.slice(5).trimStart())
            .join('\n');
          if (!data) continue;
          events.push({ at, ev: JSON.parse(data) });
          for (const w of waiters) w();
        }
      });
      res.on('error', () => {});
    });
    req.on('error', reject);
  });
  const next = (pred, from, timeoutMs = 600_000) =>
    new Promise((resolve, reject) => {
      let i = from;
      const check = () => {
        for (; i < events.length; i++) {
          if (pred(events[i].ev)) {
            waiters.delete(check);
            clearTimeout(timer);
            resolve(events[i]);
            return;
          }
        }
      };
      const timer = setTimeout(() => {
        waiters.delete(check);
        reject(new Error(`no matching event in ${timeoutMs} ms`));
      }, timeoutMs);
      waiters.add(check);
      check();
    });
  return { events, ready, next, close: () => req.destroy() };
}

/**
 * Sends `method path body` and waits for its task to end (202 { task } answers). Returns
 * { ms: request sent → task.updated succeeded received, answerMs, serverMs: the task's own
 * createdAt → endedAt, task } and throws unless it succeeded.
 */
export async function runTask(base, stream, method, p, body) {
  const from = stream.events.length;
  const t0 = nowMs();
  const r = await api(base, method, p, body, 202);
  const id = r.body.task.id;
  const end = await stream.next((e) => e.type === 'task.updated' && e.task.id === id && DONE.has(e.task.status), from);
  const { task } = end.ev;
  if (task.status !== 'succeeded') throw new Error(`${method} ${p}: task ${task.status}: ${task.error}`);
  return { ms: end.at - t0, answerMs: r.ms, serverMs: Date.parse(task.endedAt) - Date.parse(task.createdAt), task, from };
}

/** Runs a program to its end; resolves with the wall time in ms, throws on a non-zero exit. */
export function timed(cmd, args) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const child = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      if (err.length < 4000) err += d;
    });
    child.once('error', reject);
    child.once('close', (code) => (code === 0 ? resolve(nowMs() - t0) : reject(new Error(`${cmd} ${args.join(' ')} → ${code}: ${err.trim()}`))));
  });
}

/** A 1 GiB raw file with random data in every other MiB (512 MiB allocated), as a qcow2. */
export function makeSourceImage(dir) {
  const raw = path.join(dir, 'source.raw');
  const qcow2 = path.join(dir, 'source.qcow2');
  const fd = fs.openSync(raw, 'w', 0o600);
  try {
    fs.ftruncateSync(fd, GiB);
    const chunk = Buffer.alloc(MiB);
    for (let off = 0; off < GiB; off += 2 * MiB) fs.writeSync(fd, crypto.randomFillSync(chunk), 0, MiB, off);
  } finally {
    fs.closeSync(fd);
  }
  const r = spawnSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, qcow2], { encoding: 'utf8' });
  fs.rmSync(raw, { force: true });
  if (r.status !== 0) throw new Error(`qemu-img convert (source image) failed: ${r.stderr}`);
  return qcow2;
}

/**
 * PUT `totalBytes` (the same 1 MiB chunk over and over) to `url` as application/octet-stream;
 * resolves with { status, body, ms } once the answer has arrived.
 */
function putBytes(url, totalBytes, chunk) {
  return new Promise((resolve, reject) => {
    const t0 = nowMs();
    const req = http.request(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': totalBytes } }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        let body = text;
        try {
          body = JSON.parse(text);
        } catch {
          /* not JSON */
        }
        resolve({ status: res.statusCode, body, ms: nowMs() - t0 });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    let sent = 0;
    const pump = () => {
      while (sent < totalBytes) {
        const n = Math.min(chunk.length, totalBytes - sent);
        sent += n;
        if (!req.write(n === chunk.length ? chunk : chunk.subarray(0, n))) {
          req.once('drain', pump);
          return;
        }
      }
      req.end();
    };
    pump();
  });
}

/** PUT a file as the raw body (for the clone source: a real qcow2 upload). */
export function putFile(url, file) {
  return new Promise((resolve, reject) => {
    const size = fs.statSync(file).size;
    const req = http.request(url, { method: 'PUT', headers: { 'content-type': 'application/octet-stream', 'content-length': size } }, (res) => {
      const parts = [];
      res.on('data', (c) => parts.push(c));
      res.on('end', () => resolve({ status: res.statusCode, body: JSON.parse(Buffer.concat(parts).toString('utf8')) }));
      res.on('error', reject);
    });
    req.on('error', reject);
    fs.createReadStream(file).pipe(req);
  });
}

/**
 * The test guest ISO (test/guest/): the cached build when it was made from today's build.sh (the
 * same recipe stamp test/guest/index.ts keeps), or a fresh one; null when it cannot be had.
 */
export function testGuestIso() {
  const iso = path.join(root, '.cache/test-guest/testguest.iso');
  const stamp = `${iso}.recipe-sha256`;
  const script = path.join(root, 'test/guest/build.sh');
  const recipe = crypto.createHash('sha256').update(fs.readFileSync(script)).digest('hex');
  const current = () => fs.existsSync(iso) && fs.existsSync(stamp) && fs.readFileSync(stamp, 'utf8').trim() === recipe;
  if (current()) return { iso };
  log('building the test guest ISO (test/guest/build.sh)…');
  const b = spawnSync('bash', [script, iso], { cwd: root, encoding: 'utf8' });
  if (b.status === 0 && fs.existsSync(iso)) {
    fs.writeFileSync(`${stamp}.tmp-${process.pid}`, `${recipe}\n`);
    fs.renameSync(`${stamp}.tmp-${process.pid}`, stamp);
    return { iso };
  }
  return { iso: null, why: `test/guest/build.sh failed: ${(b.stderr || b.stdout || '').trim().split('\n').slice(-3).join(' ')}` };
}

/** The new disk's id in a disk.clone task's result ({ disk: id }; an object with an id accepted too). */
const clonedId = (task) => (typeof task.result?.disk === 'string' ? task.result.disk : task.result?.disk?.id);

/** Full clone (API vs qemu-img convert by hand) and linked clone latency. */
async function benchClones(base, dataDir, stream, S) {
  const work = path.join(dataDir, 'bench-storage');
  fs.mkdirSync(work, { recursive: true });
  const src = makeSourceImage(work);
  const up = await putFile(new URL('/api/disks/upload/bench-clone-src', base), src);
  if (up.status !== 201) throw new Error(`uploading the clone source → ${up.status}: ${up.body.error}`);
  fs.rmSync(src, { force: true });
  const source = up.body.disk;
  const info = JSON.parse(spawnSync('qemu-img', ['info', '-U', '--output=json', source.path], { encoding: 'utf8' }).stdout);
  S.source = { path: source.path, virtualBytes: info['virtual-size'], allocatedBytes: info['actual-size'], format: source.format };
  log(`clone source: ${fmt(info['virtual-size'] / GiB)} GiB ${source.format}, ${fmt(info['actual-size'] / MiB)} MiB allocated`);

  // Full clone: interleaved, after one by-hand warm-up (the source in the page cache for both).
  const handOut = path.join(work, 'by-hand.qcow2');
  const byHand = () => timed('qemu-img', ['convert', '-p', '-f', source.format, '-O', source.format, source.path, handOut]).finally(() => fs.rmSync(handOut, { force: true }));
  const viaApi = async (i) => {
    const t = await runTask(base, stream, 'POST', `/api/disks/${source.id}/clone`, { name: `bench-full-${i}`, mode: 'full' });
    await api(base, 'DELETE', `/api/disks/${clonedId(t.task)}`, undefined, 200);
    return t;
  };
  // The server's read path by hand (info row): a qemu-nbd serving the file read-only as raw, and
  // qemu-img convert reading the image over NBD; timed from starting qemu-nbd.
  const sock = path.join(work, 'nbd.sock');
  const overNbd = async () => {
    const t0 = nowMs();
    const nbd = spawn('qemu-nbd', ['--read-only', '--shared=1', '--image-opts', '--socket', sock, `driver=raw,file.driver=file,file.filename=${source.path},file.locking=off`], { stdio: 'ignore' });
    try {
      if (!(await waitFor(() => fs.existsSync(sock), 10_000, 1))) throw new Error('qemu-nbd did not serve the image');
      const json = JSON.stringify({ driver: source.format, file: { driver: 'nbd', server: { type: 'unix', path: sock } } });
      await timed('qemu-img', ['convert', '-p', '-O', source.format, `json:${json}`, handOut]);
      return nowMs() - t0;
    } finally {
      nbd.kill('SIGKILL');
      fs.rmSync(handOut, { force: true });
      fs.rmSync(sock, { force: true });
    }
  };
  await byHand();
  const full = { api: [], apiServer: [], byHand: [], byHandOverNbd: [] };
  for (let i = 0; i < CFG.storageRuns; i++) {
    const one = async () => {
      const t = await viaApi(i);
      full.api.push(t.ms);
      full.apiServer.push(t.serverMs);
    };
    if (i % 2 === 0) {
      await one();
      full.byHand.push(await byHand());
      full.byHandOverNbd.push(await overNbd());
    } else {
      full.byHandOverNbd.push(await overNbd());
      full.byHand.push(await byHand());
      await one();
    }
  }
  S.fullClone = full;
  log(`full clone ms: api ${full.api.map((x) => fmt(x)).join(' ')} | by hand ${full.byHand.map((x) => fmt(x)).join(' ')} | by hand over qemu-nbd ${full.byHandOverNbd.map((x) => fmt(x)).join(' ')}`);

  // Linked clone: request → task succeeded; by hand, the same qemu-img create of an overlay.
  const linked = { api: [], answer: [], apiServer: [], byHand: [] };
  const clones = [];
  const handOverlay = path.join(work, 'by-hand-overlay.qcow2');
  for (let i = 0; i < CFG.linkedRuns + 1; i++) {
    const t = await runTask(base, stream, 'POST', `/api/disks/${source.id}/clone`, { name: `bench-linked-${i}`, mode: 'linked' });
    clones.push(clonedId(t.task));
    const h = await timed('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', source.format, '-b', source.path, '-u', handOverlay, String(S.source.virtualBytes)]);
    fs.rmSync(handOverlay, { force: true });
    if (i === 0) continue; // warm-up
    linked.api.push(t.ms);
    linked.answer.push(t.answerMs);
    linked.apiServer.push(t.serverMs);
    linked.byHand.push(h);
  }
  for (const id of clones) await api(base, 'DELETE', `/api/disks/${id}`, undefined, 200);
  S.linkedClone = { ...linked, summary: summary(linked.api) };
  log(`linked clone ms: api p50 ${fmt(median(linked.api))} (202 answered after ${fmt(median(linked.answer))}) | qemu-img create by hand p50 ${fmt(median(linked.byHand))}`);
  await api(base, 'DELETE', `/api/disks/${source.id}`, undefined, 200);
}

/** Snapshots with memory of a running 256 MiB test guest: the pause from vm.updated events. */
async function benchSnapshot(base, dataDir, stream, S) {
  const { iso, why } = testGuestIso();
  if (!iso) {
    S.skipped = why;
    log(`snapshot row skipped: ${why}`);
    return;
  }
  const isoPath = path.join(dataDir, 'isos', 'testguest.iso');
  fs.copyFileSync(iso, isoPath);
  const vm = (await api(base, 'POST', '/api/vms', { name: 'bench-snapshot', cpus: 1, memory: 256 }, 201)).body.vm;
  const disk = (await api(base, 'POST', '/api/disks', { name: 'bench-snapshot-disk', size: 1, format: 'qcow2' }, 201)).body.disk;
  let ready = false;
  await waitFor(async () => (ready = (await api(base, 'GET', `/api/disks/${disk.id}`)).body.disk.status === 'ready'), 60_000, 50);
  if (!ready) throw new Error('the snapshot VM disk did not become ready');
  await api(base, 'POST', `/api/vms/${vm.id}/disks/attach`, { diskPath: disk.path });
  await api(base, 'POST', `/api/vms/${vm.id}/iso/mount`, { isoPath });
  await api(base, 'POST', `/api/vms/${vm.id}/start`);
  onCleanup('snapshot vm', async () => {
    await api(base, 'POST', `/api/vms/${vm.id}/stop`).catch(() => {});
  });
  const t0 = Date.now();
  if (!(await waitFor(() => serialLog(dataDir, vm.id).includes('TESTGUEST_READY'), 120_000, 100))) throw new Error('the test guest did not print TESTGUEST_READY');
  S.bootSeconds = (Date.now() - t0) / 1000;

  const isVm = (status) => (e) => e.type === 'vm.updated' && e.vm.id === vm.id && e.vm.status === status;
  const out = { task: [], serverTask: [], pause: [], pausedEvents: [], vmStateBytes: [] };
  for (let i = 0; i < CFG.snapshotRuns; i++) {
    const t = await runTask(base, stream, 'POST', `/api/vms/${vm.id}/snapshots`, { name: `bench-mem-${i}`, includeMemory: true });
    out.task.push(t.ms);
    out.serverTask.push(t.serverMs);
    const since = stream.events.slice(t.from);
    const paused = since.find((x) => isVm('paused')(x.ev));
    const resumed = paused ? since.find((x) => x.at >= paused.at && isVm('running')(x.ev)) : null;
    out.pausedEvents.push(Boolean(paused && resumed));
    if (paused && resumed) out.pause.push(resumed.at - paused.at);
  }
  const snaps = (await api(base, 'GET', `/api/vms/${vm.id}/snapshots`)).body.snapshots;
  out.vmStateBytes = snaps.map((s) => s.sizeBytes);
  S.snapshot = out;
  await api(base, 'POST', `/api/vms/${vm.id}/stop`);
  log(`snapshot with memory: task ms ${out.task.map((x) => fmt(x)).join(' ')}; pause (vm.updated paused → running) ms ${out.pause.map((x) => fmt(x)).join(' ') || 'no events'}; VM state ${fmt(median(out.vmStateBytes) / MiB)} MiB`);
}

/** PUT /api/disks/upload/{name} of CFG.uploadMiB raw vs a bare node:http sink writing a file. */
async function benchUpload(base, dataDir, S) {
  const sink = await helper('upload sink', 'upload-sink.mjs', [path.join(dataDir, 'disks')]);
  const total = CFG.uploadMiB * MiB;
  const chunk = crypto.randomFillSync(Buffer.alloc(MiB));
  chunk.fill(0, 0, 4096); // a raw image: no header of any format in its first sector
  const ours = async (i) => {
    const r = await putBytes(new URL(`/api/disks/upload/bench-upload-${i}`, base), total, chunk);
    if (r.status !== 201) throw new Error(`PUT /api/disks/upload → ${r.status}: ${r.body?.error ?? r.body}`);
    await api(base, 'DELETE', `/api/disks/${r.body.disk.id}`, undefined, 200);
    return r.ms;
  };
  const bare = async () => {
    const r = await putBytes(new URL(`http://127.0.0.1:${sink.port}/upload`), total, chunk);
    if (r.status !== 201 || r.body.bytes !== total) throw new Error(`upload sink → ${r.status}`);
    return r.ms;
  };
  await ours('warmup');
  await bare();
  const out = { oursMiBs: [], bareMiBs: [] };
  const mibs = (ms) => CFG.uploadMiB / (ms / 1000);
  for (let i = 0; i < CFG.storageRuns; i++) {
    if (i % 2 === 0) {
      out.oursMiBs.push(mibs(await ours(i)));
      out.bareMiBs.push(mibs(await bare()));
    } else {
      out.bareMiBs.push(mibs(await bare()));
      out.oursMiBs.push(mibs(await ours(i)));
    }
  }
  await sink.stop();
  S.upload = out;
  log(`upload ${CFG.uploadMiB} MiB, MiB/s: ours ${out.oursMiBs.map((x) => fmt(x)).join(' ')} | bare sink ${out.bareMiBs.map((x) => fmt(x)).join(' ')}`);
}

/** The storage section (results.sections.storage). */
export async function benchStorage(base, dataDir) {
  const S = (results.sections.storage = {});
  const stream = eventStream(base);
  onCleanup('storage event stream', async () => stream.close());
  await stream.ready;
  try {
    await benchClones(base, dataDir, stream, S);
    await benchUpload(base, dataDir, S);
    await benchSnapshot(base, dataDir, stream, S);
  } finally {
    stream.close();
    fs.rmSync(path.join(dataDir, 'bench-storage'), { recursive: true, force: true });
  }
}
