/**
 * Metrics (issue 14): a sampling round (run by hand: the timer is set to an hour) over the fake
 * runtime's counters, then every route: a VM's history in its three ranges, the list's summary,
 * the host, the Prometheus text (parsed strictly), screenshots (scaled, cached, refused for a
 * stopped VM and bad widths), history across a restart and gone with its VM.
 */
import { HostMetrics, MetricsSummary, VmMetrics, type VmEnvelope } from '@qemu-manager/contract';
import Database from 'better-sqlite3';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { decodePng, encodePng } from '../../../packages/server/src/lib/png.js';
import { parsePrometheus } from '../../prometheus.js';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const env = { METRICS_INTERVAL_MS: '3600000' };
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

export function metricsSuite(): void {
  describe('metrics (issue 14)', () => {
    let s: InProcessServer;
    let busy: string;
    let idle: string;
    const disk = (written: number) => [{ device: 'disk0', readBytes: 1000, writtenBytes: written, readOps: 10, writeOps: written / 512 }];

    beforeAll(async () => {
      s = await startInProcess({ env });
      busy = ((await s.api('POST', '/vms', { name: 'm-busy', cpus: 1, memory: 64 })).body as VmEnvelope).vm.id;
      idle = ((await s.api('POST', '/vms', { name: 'm-idle', cpus: 1, memory: 64 })).body as VmEnvelope).vm.id;
      expect((await s.api('POST', `/vms/${busy}/start`)).status).toBe(200);
      s.runtime.counters.set(busy, { cpuSeconds: 10, rssBytes: 64 << 20, disks: disk(4096) });
      await s.built.metrics!.tick();
      await pause(20);
      s.runtime.counters.set(busy, { cpuSeconds: 20, rssBytes: 65 << 20, disks: disk(1 << 20) });
      await s.built.metrics!.tick();
    });
    afterAll(async () => {
      await s.close();
    });

    it('GET /vms/{id}/metrics: the last counters, and the rates in the series of each range', async () => {
      const r = await s.api('GET', `/vms/${busy}/metrics?range=15m`);
      expect(r.status).toBe(200);
      expectShape(VmMetrics, r.body);
      const m = r.body as VmMetrics;
      expect(m.stepSeconds).toBe(5);
      expect(m.current).toMatchObject({ diskWriteBytes: 1 << 20, diskReadBytes: 1000, cpuSeconds: 20, rssBytes: 65 << 20, netRxBytes: null });
      expect(m.current!.cpuPercent).toBeGreaterThan(100); // 10 CPU seconds in well under 10 s
      expect(Math.max(...m.series.diskWriteBps.map((x) => x ?? 0))).toBeGreaterThan(0);
      expect(m.series.t.length).toBe(m.series.cpuPercent.length);
      expect(((await s.api('GET', `/vms/${busy}/metrics?range=1h`)).body as VmMetrics).stepSeconds).toBe(60);
      expect(((await s.api('GET', `/vms/${busy}/metrics?range=24h`)).body as VmMetrics).stepSeconds).toBe(300);
      expect(((await s.api('GET', `/vms/${busy}/metrics`)).body as VmMetrics).range).toBe('1h');
      // a stopped VM has no current sample and (never having run) no points
      const stopped = (await s.api('GET', `/vms/${idle}/metrics?range=15m`)).body as VmMetrics;
      expect(stopped).toMatchObject({ current: null, series: { t: [] } });
    });

    it('refuses an unknown range and an unknown VM', async () => {
      const bad = await s.api('GET', `/vms/${busy}/metrics?range=2d`);
      expect(bad.status).toBe(400);
      expectError(bad, 'VALIDATION', 400, /range/);
      expectError(await s.api('GET', '/vms/nope/metrics'), 'VM_NOT_FOUND', 404, 'VM not found: nope');
    });

    it('GET /metrics/summary: every VM, its CPU sparkline in one request', async () => {
      const r = await s.api('GET', '/metrics/summary');
      expect(r.status).toBe(200);
      expectShape(MetricsSummary, r.body);
      const sum = r.body as MetricsSummary;
      const b = sum.vms.find((v) => v.id === busy)!;
      expect(b.running).toBe(true);
      expect(b.cpu).toHaveLength(30);
      expect(b.cpu.some((x) => x !== null && x > 0)).toBe(true);
      expect(sum.vms.find((v) => v.id === idle)).toMatchObject({ running: false, cpuPercent: null });
    });

    it('GET /host/metrics: CPU, memory, and free space of every storage root and backup target', async () => {
      await s.built.metrics!.tick(); // a second host sample: a CPU share
      const r = await s.api('GET', '/host/metrics');
      expect(r.status).toBe(200);
      expectShape(HostMetrics, r.body);
      const h = r.body as HostMetrics;
      expect(h.memory.totalBytes).toBeGreaterThan(h.memory.availableBytes);
      expect(h.cpu.percent).not.toBeNull();
      expect(h.storage.find((x) => x.kind === 'storage-root' && x.path === path.join(s.dataDir, 'disks'))?.freeBytes).toBeGreaterThan(0);
      expect(h.storage.find((x) => x.kind === 'backup-target' && x.name === 'default')?.freeBytes).toBeGreaterThan(0);
    });

    it('GET /api/metrics: Prometheus text with qemu_manager_ names and vm/name labels', async () => {
      const r = await s.inject({ method: 'GET', url: '/api/metrics' });
      expect(r.status).toBe(200);
      expect(String(r.headers['content-type'])).toBe('text/plain; version=0.0.4; charset=utf-8');
      const fams = parsePrometheus(r.body as string);
      expect(fams.get('qemu_manager_vm_up')!.samples).toEqual(
        expect.arrayContaining([
          { labels: { vm: busy, name: 'm-busy' }, value: 1 },
          { labels: { vm: idle, name: 'm-idle' }, value: 0 },
        ]),
      );
      expect(fams.get('qemu_manager_vm_disk_written_bytes_total')!.samples).toEqual([{ labels: { vm: busy, name: 'm-busy' }, value: 1 << 20 }]);
      expect(fams.get('qemu_manager_vm_cpu_seconds_total')).toMatchObject({ type: 'counter' });
    });

    it('GET /vms/{id}/screenshot: a PNG, scaled down to width, cached; 409 for a stopped VM; bad widths 400', async () => {
      const calls = () => s.runtime.calls.filter((c) => c.method === 'screenshot').length;
      const before = calls();
      const r = await s.inject({ method: 'GET', url: `/api/vms/${busy}/screenshot` });
      expect(r.status).toBe(200);
      expect(r.headers['content-type']).toBe('image/png');
      const raw = await s.app.inject({ method: 'GET', url: `/api/vms/${busy}/screenshot?width=16` });
      const native = decodePng((await s.app.inject({ method: 'GET', url: `/api/vms/${busy}/screenshot` })).rawPayload);
      expect([native.width, native.height]).toEqual([4, 2]);
      expect(decodePng(raw.rawPayload).width).toBe(4); // never scaled up
      expect(calls() - before).toBe(1); // one frame for every width: the rest came from the cache
      // a bigger frame of another VM, scaled down in the server
      s.runtime.screenPng = encodePng({ width: 64, height: 48, data: Buffer.alloc(64 * 48 * 3, 0x40) });
      expect((await s.api('POST', `/vms/${idle}/start`)).status).toBe(200);
      const small = decodePng((await s.app.inject({ method: 'GET', url: `/api/vms/${idle}/screenshot?width=32` })).rawPayload);
      expect([small.width, small.height, small.data[0]]).toEqual([32, 24, 0x40]);
      expect((await s.api('POST', `/vms/${idle}/stop`)).status).toBe(200);
      expectError(await s.api('GET', `/vms/${idle}/screenshot`), 'VM_NOT_RUNNING', 409, 'VM is not running');
      expectError(await s.api('GET', `/vms/${busy}/screenshot?width=8`), 'VALIDATION', 400, 'width must be between 16 and 1920');
      expect((await s.api('GET', `/vms/${busy}/screenshot?width=big`)).status).toBe(400);
      expect((await s.api('GET', `/vms/${busy}/screenshot?other=1`)).status).toBe(400);
      expect((await s.inject({ method: 'GET', url: `/api/vms/${busy}/screenshot?width=16&t=12345` })).status).toBe(200); // the UI's cache buster
      expectError(await s.api('GET', '/vms/nope/screenshot'), 'VM_NOT_FOUND', 404, 'VM not found: nope');
    });

    it('history survives a restart; a deleted VM\'s history goes with it', async () => {
      const dataDir = makeTempDir();
      const first = await startInProcess({ env, dataDir, keepDir: true });
      let id: string;
      try {
        id = ((await first.api('POST', '/vms', { name: 'm-keep', cpus: 1, memory: 64 })).body as VmEnvelope).vm.id;
        await first.api('POST', `/vms/${id}/start`);
        first.runtime.counters.set(id, { cpuSeconds: 1, rssBytes: 1 << 20, disks: disk(512) });
        await first.built.metrics!.tick();
        await pause(20);
        first.runtime.counters.set(id, { cpuSeconds: 2, rssBytes: 1 << 20, disks: disk(1 << 16) });
        await first.built.metrics!.tick();
        await first.app.close();
      } catch (err) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        throw err;
      }
      const second = await startInProcess({ env, dataDir });
      try {
        const m = (await second.api('GET', `/vms/${id}/metrics?range=15m`)).body as VmMetrics;
        expect(m.series.t.length).toBeGreaterThan(0);
        expect(Math.max(...m.series.diskWriteBps.map((x) => x ?? 0))).toBeGreaterThan(0);
        expect(m.current).toBeNull(); // not running here
        const rows = () => {
          const db = new Database(path.join(dataDir, 'db.sqlite'), { readonly: true });
          try {
            return (db.prepare('SELECT COUNT(*) AS n FROM vm_metrics WHERE vm_id = ?').get(id) as { n: number }).n;
          } finally {
            db.close();
          }
        };
        expect(rows()).toBeGreaterThan(0);
        expect((await second.api('DELETE', `/vms/${id}`)).status).toBe(200);
        expect(rows()).toBe(0);
      } finally {
        await second.close();
      }
    });
  });
}
