/**
 * Metrics (issue 14), against a real server and a real QEMU (TCG) running the test guest: a
 * script disk writes 32 MiB to the VM's data disk and then spins in a busy loop. The sampler
 * (every second here) shows the write bytes and a high CPU share; /api/metrics parses as
 * Prometheus text; a screenshot is a PNG of the asked width with real pixels; the history
 * survives a server restart (the VM keeps running and is adopted).
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng } from '../../packages/server/src/lib/png.js';
import { ensureTestGuestIso, writeScriptDisk } from '../guest/index.js';
import { parsePrometheus } from '../prometheus.js';
import { makeDataDir, serialLog, TestServer, waitFor } from './harness.js';

const MiB = 1 << 20;

describe('metrics with a real QEMU (issue 14)', () => {
  let server: TestServer;
  let id: string;

  beforeAll(async () => {
    const iso = await ensureTestGuestIso();
    server = await new TestServer(makeDataDir(), { METRICS_INTERVAL_MS: '1000' }).start(); // the sampler every second
    const isoPath = path.join(server.dataDir, 'isos', 'testguest.iso');
    fs.copyFileSync(iso, isoPath);
    const data = path.join(server.dataDir, 'disks', 'data.img');
    fs.writeFileSync(data, Buffer.alloc(0), { mode: 0o600 });
    fs.truncateSync(data, 64 * MiB);
    const script = path.join(server.dataDir, 'disks', 'script.img');
    await writeScriptDisk(script, 'dd if=/dev/urandom of=/dev/vda bs=1M count=32 conv=fsync 2>/dev/null; echo METRICS_DD_DONE\nwhile :; do :; done\n');
    const vm = await server.api('POST', '/vms', { name: 'metrics', cpus: 1, memory: 128 });
    expect(vm.status).toBe(201);
    id = vm.body.vm.id;
    for (const diskPath of [data, script]) expect((await server.api('POST', `/vms/${id}/disks/attach`, { diskPath })).status).toBe(200);
    expect((await server.api('POST', `/vms/${id}/iso/mount`, { isoPath })).status).toBe(200);
    const started = await server.api('POST', `/vms/${id}/start`);
    expect(started.status, JSON.stringify(started.body)).toBe(200);
    await waitFor(() => serialLog(server.dataDir, id).includes('METRICS_DD_DONE'), 120_000, 'the guest to write its disk');
  }, 180_000);

  afterAll(async () => {
    await server?.dispose();
  });

  it('a guest dd shows as write bytes, its busy loop as high CPU', async () => {
    const m = await waitFor(async () => {
      const r = (await server.api('GET', `/vms/${id}/metrics?range=15m`)).body;
      const c = r.current;
      return c && c.diskWriteBytes >= 32 * MiB && c.cpuPercent !== null && c.cpuPercent > 50 ? r : null;
    }, 60_000, 'the sampler to see the writes and the busy loop');
    console.info(`metrics: cpu ${m.current.cpuPercent} %, written ${m.current.diskWriteBytes} B in ${m.current.diskWriteOps} ops, rss ${m.current.rssBytes} B`);
    expect(m.current.rssBytes).toBeGreaterThan(16 * MiB);
    expect(m.current.diskWriteOps).toBeGreaterThan(0);
    expect(Math.max(...m.series.diskWriteBps.map((x: number | null) => x ?? 0))).toBeGreaterThan(0);
    expect(Math.max(...m.series.cpuPercent.map((x: number | null) => x ?? 0))).toBeGreaterThan(50);
    const host = (await server.api('GET', '/host/metrics')).body;
    expect(host.cpu.percent).toBeGreaterThan(0);
  }, 90_000);

  it("the guest's own view of its memory comes from the balloon driver, next to the RSS", async () => {
    const c = await waitFor(async () => {
      const cur = (await server.api('GET', `/vms/${id}/metrics?range=15m`)).body.current;
      return cur && typeof cur.guestMemoryTotalBytes === 'number' ? cur : null;
    }, 60_000, 'the guest to report its memory through the balloon');
    console.info(`metrics: guest memory ${c.guestMemoryTotalBytes} B, available ${c.guestMemoryAvailableBytes} B, rss ${c.rssBytes} B`);
    // the guest sees less than the 128 MiB it was given (the kernel keeps some), but most of it
    expect(c.guestMemoryTotalBytes).toBeLessThanOrEqual(128 * MiB);
    expect(c.guestMemoryTotalBytes).toBeGreaterThan(64 * MiB);
    expect(c.guestMemoryAvailableBytes).toBeGreaterThan(0);
    expect(c.guestMemoryAvailableBytes).toBeLessThanOrEqual(c.guestMemoryTotalBytes);
    const fams = parsePrometheus(await (await fetch(`${server.url}/api/metrics`)).text());
    expect(fams.get('qemu_manager_vm_guest_memory_total_bytes')!.samples.find((s) => s.labels.vm === id)!.value).toBeGreaterThan(64 * MiB);
  }, 90_000);

  it('GET /api/metrics parses as Prometheus text and carries the VM', async () => {
    const res = await fetch(`${server.url}/api/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    const fams = parsePrometheus(await res.text());
    expect(fams.get('qemu_manager_vm_up')!.samples).toContainEqual({ labels: { vm: id, name: 'metrics' }, value: 1 });
    const written = fams.get('qemu_manager_vm_disk_written_bytes_total')!.samples.find((s) => s.labels.vm === id)!;
    expect(written.value).toBeGreaterThanOrEqual(32 * MiB);
    expect(fams.get('qemu_manager_vm_cpu_seconds_total')!.samples.find((s) => s.labels.vm === id)!.value).toBeGreaterThan(1);
  });

  it('a screenshot is a PNG of the asked width with real pixels; the run dir keeps no file of it', async () => {
    const native = await fetch(`${server.url}/api/vms/${id}/screenshot`);
    expect(native.status).toBe(200);
    expect(native.headers.get('content-type')).toBe('image/png');
    const full = decodePng(Buffer.from(await native.arrayBuffer()));
    console.info(`screenshot: native ${full.width}x${full.height}`);
    expect(full.width).toBeGreaterThanOrEqual(640);
    const small = decodePng(Buffer.from(await (await fetch(`${server.url}/api/vms/${id}/screenshot?width=320`)).arrayBuffer()));
    expect(small.width).toBe(320);
    expect(small.height).toBe(Math.round((full.height * 320) / full.width));
    let lit = 0;
    for (let i = 0; i < full.data.length; i += 3) if (full.data[i] > 40 || full.data[i + 1] > 40 || full.data[i + 2] > 40) lit++;
    expect(lit).toBeGreaterThan(100); // the guest's text on the console
    expect(fs.readdirSync(path.join(server.dataDir, 'run', id, 'qemu')).filter((f) => f.startsWith('screen-'))).toEqual([]);
  });

  it('the history survives a server restart (the VM keeps running and is sampled on)', async () => {
    const before = (await server.api('GET', `/vms/${id}/metrics?range=15m`)).body;
    const firstT = before.series.t[0] as number;
    expect(firstT).toBeDefined();
    await server.kill('SIGTERM');
    await server.start();
    const after = (await server.api('GET', `/vms/${id}/metrics?range=15m`)).body;
    expect(after.series.t).toContain(firstT);
    expect(Math.max(...after.series.diskWriteBps.map((x: number | null) => x ?? 0))).toBeGreaterThan(0);
    await waitFor(async () => (await server.api('GET', `/vms/${id}/metrics?range=15m`)).body.current, 30_000, 'a sample after the restart');
  }, 60_000);
});
