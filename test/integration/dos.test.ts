/**
 * Denial of service against a real server on loopback: slow headers, a stalled upload, a slow JSON
 * body, too many event streams, partial uploads left by a crash, and the host-wide memory total.
 * The short timeouts come from the environment; every connection is loopback and bounded.
 */
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, waitFor } from './harness.js';

let s: TestServer;
let isoDir: string;

beforeAll(async () => {
  const dir = makeDataDir();
  isoDir = path.join(dir, 'isos');
  fs.mkdirSync(isoDir, { recursive: true });
  // What a crash in the middle of an upload leaves behind, and a file that is not one.
  fs.writeFileSync(path.join(isoDir, '.upload-0f7c1d2e-stale'), Buffer.alloc(4096));
  fs.writeFileSync(path.join(isoDir, 'notes.txt'), 'keep me');
  s = await new TestServer(dir, {
    HEADERS_TIMEOUT_MS: '1500',
    REQUEST_TIMEOUT_MS: '1000',
    UPLOAD_IDLE_TIMEOUT_S: '2',
    MAX_CONNECTIONS_PER_CLIENT: '100',
    MAX_SSE_PER_CLIENT: '3',
    MAX_VM_MEMORY_TOTAL: '512',
  }).start();
});
afterAll(() => s.dispose());

/** A tiny file that passes the ISO 9660 signature check (CD001 in the descriptor at sector 16). */
function fakeIso(size = 48 * 1024): Buffer {
  const b = Buffer.alloc(size);
  b.write('\u0001CD001', 16 * 2048, 'latin1');
  return b;
}

/** A raw request whose body the test writes by hand; resolves when the server closes or answers. */
function openRequest(method: string, p: string, headers: Record<string, string>) {
  const req = http.request({ host: '127.0.0.1', port: s.port, method, path: p, agent: false, headers });
  const done = new Promise<{ status: number | null; closedBy: 'response' | 'error' }>((resolve) => {
    req.on('response', (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode ?? 0, closedBy: 'response' }));
    });
    req.on('error', () => resolve({ status: null, closedBy: 'error' }));
  });
  return { req, done };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('denial of service bounds', () => {
  it('partial uploads left before the start are removed, other files are kept', () => {
    expect(fs.readdirSync(isoDir).sort()).toEqual(['notes.txt']);
  });

  it('300 slow-header connections from one client neither stop /api/health nor stay open', async () => {
    const sockets: Array<{ sock: net.Socket; got: string; closed: boolean }> = [];
    const drip: NodeJS.Timeout[] = [];
    try {
      await Promise.all(
        Array.from(
          { length: 300 },
          () =>
            new Promise<void>((resolve) => {
              const entry = { sock: net.connect({ host: '127.0.0.1', port: s.port, localAddress: '127.0.0.2' }), got: '', closed: false };
              sockets.push(entry);
              entry.sock.on('data', (d) => (entry.got += d.toString('latin1')));
              entry.sock.on('error', () => undefined);
              entry.sock.on('close', () => {
                entry.closed = true;
                resolve();
              });
              entry.sock.on('connect', () => {
                entry.sock.write('GET /api/health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: ');
                // one byte of header every 300 ms: never finished, never idle
                drip.push(setInterval(() => entry.sock.writable && entry.sock.write('a'), 300));
                resolve();
              });
            }),
        ),
      );
      const health = await s.api('GET', '/health');
      expect(health.status).toBe(200);
      expect(health.body.status).toBe('ok');
      // Every slow connection ends: refused over the per-client cap, or cut at the headers timeout.
      await waitFor(() => sockets.every((x) => x.closed), 30_000, 'all slow-header connections to be closed');
      const answered = sockets.filter((x) => x.got !== '');
      expect(answered.length).toBeGreaterThanOrEqual(1);
      expect(answered.length).toBeLessThanOrEqual(100);
      for (const x of answered) expect(x.got).toMatch(/^HTTP\/1\.1 408/);
      expect((await s.api('GET', '/health')).status).toBe(200);
    } finally {
      drip.forEach(clearInterval);
      for (const x of sockets) x.sock.destroy();
    }
  });

  it('an upload that stalls is aborted after the idle timeout and leaves no temp file', async () => {
    const { req, done } = openRequest('PUT', '/api/isos/stall.iso', {
      'content-type': 'application/octet-stream',
      'content-length': String(1 << 20),
    });
    req.write(Buffer.alloc(64 * 1024));
    await waitFor(() => fs.readdirSync(isoDir).some((f) => f.startsWith('.upload-')), 10_000, 'the upload to start');
    const end = await Promise.race([done, sleep(20_000).then(() => null)]);
    req.destroy();
    expect(end).not.toBeNull();
    await waitFor(() => !fs.readdirSync(isoDir).some((f) => f.startsWith('.upload-')), 5000, 'the temp file to go');
    expect(fs.readdirSync(isoDir).sort()).toEqual(['notes.txt']);
  });

  it('a slow upload that keeps sending outlives the request timeout', async () => {
    const iso = fakeIso();
    const { req, done } = openRequest('PUT', '/api/isos/slow.iso', {
      'content-type': 'application/octet-stream',
      'content-length': String(iso.length),
    });
    const chunk = iso.length / 6;
    for (let i = 0; i < 6; i++) {
      req.write(iso.subarray(i * chunk, (i + 1) * chunk));
      await sleep(500); // 3 s in all: past REQUEST_TIMEOUT_MS, never idle for UPLOAD_IDLE_TIMEOUT_S
    }
    req.end();
    expect(await done).toEqual({ status: 201, closedBy: 'response' });
    expect(fs.statSync(path.join(isoDir, 'slow.iso')).size).toBe(iso.length);
    expect((await s.api('DELETE', '/isos/slow.iso')).status).toBe(200);
  });

  it('a JSON body that trickles in is cut at the request timeout, and nothing is created', async () => {
    const { req, done } = openRequest('POST', '/api/vms', { 'content-type': 'application/json', 'content-length': '200' });
    req.write('{"name":"s');
    const end = await Promise.race([done, sleep(20_000).then(() => null)]);
    req.destroy();
    expect(end).not.toBeNull();
    expect((await s.api('GET', '/vms')).body.vms).toEqual([]);
  });

  it('event streams over the per-client cap get 429; closing one frees its place', async () => {
    const ctrls = [new AbortController(), new AbortController(), new AbortController()];
    try {
      for (const c of ctrls) expect((await fetch(`${s.url}/api/events`, { signal: c.signal })).status).toBe(200);
      const over = await fetch(`${s.url}/api/events`);
      expect(over.status).toBe(429);
      expect(over.headers.get('retry-after')).toMatch(/^\d+$/);
      const body = await over.json();
      expect(body.code).toBe('RATE_LIMITED');
      expect(typeof body.error).toBe('string');
      ctrls[0].abort();
      const again = new AbortController();
      ctrls.push(again);
      await waitFor(async () => {
        const r = await fetch(`${s.url}/api/events`, { signal: again.signal });
        if (r.status !== 200) await r.body?.cancel();
        return r.status === 200;
      }, 5000, 'a place to free up');
    } finally {
      for (const c of ctrls) c.abort();
    }
  });

  it('MAX_VM_MEMORY_TOTAL refuses a VM that would exceed it (409), on create and on update, and health reports it', async () => {
    const h0 = (await s.api('GET', '/health')).body;
    expect(h0.limits).toEqual({ vmMemoryDeclaredMiB: 0, vmMemoryTotalMiB: 512, maxVmMemoryTotalMiB: 512, memoryOvercommit: null });
    const a = await s.api('POST', '/vms', { name: 'mem-a', cpus: 1, memory: 256 });
    expect(a.status).toBe(201);
    const b = await s.api('POST', '/vms', { name: 'mem-b', cpus: 1, memory: 257 });
    expect(b.status).toBe(409);
    expect(b.body.code).toBe('LIMIT_EXCEEDED');
    expect(b.body.error).toMatch(/512 MiB/);
    expect((await s.api('GET', '/vms')).body.vms.map((v: { name: string }) => v.name)).toEqual(['mem-a']);
    const c = await s.api('POST', '/vms', { name: 'mem-c', cpus: 1, memory: 256 });
    expect(c.status).toBe(201);
    // a VM's own memory is not counted twice when it changes
    const up = await s.api('PATCH', `/vms/${a.body.vm.id}/resources`, { memory: 257 });
    expect(up.status).toBe(409);
    expect(up.body.code).toBe('LIMIT_EXCEEDED');
    expect((await s.api('PATCH', `/vms/${a.body.vm.id}/resources`, { memory: 128 })).status).toBe(200);
    expect((await s.api('PATCH', `/vms/${a.body.vm.id}/resources`, { memory: 256 })).status).toBe(200);
    expect((await s.api('GET', '/health')).body.limits.vmMemoryDeclaredMiB).toBe(512);
    for (const v of [a, c]) expect((await s.api('DELETE', `/vms/${v.body.vm.id}`)).status).toBe(200);
  });
});
