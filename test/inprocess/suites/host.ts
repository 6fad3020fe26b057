/**
 * Host-wide bounds, and what only a real socket shows: the HTTP parser's refusals, the event
 * stream, and streamed ISO uploads (over the limit without a declared length, idle, cut short).
 * The server listens on 127.0.0.1 with a free port; nothing leaves loopback.
 */
import { Health, ServerEvent, type VmEnvelope } from '@qemu-manager/contract';
import Database from 'better-sqlite3';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startInProcess, type InProcessServer, type Reply } from '../app.js';
import { FakeRuntime } from '../fake-runtime.js';
import { expectError, expectShape } from '../check.js';
import { isoBytes } from './vms.js';

/** One raw HTTP exchange on a fresh connection: what the server wrote until it closed (or `untilMs`). */
function rawExchange(port: number, request: string | Buffer, untilMs = 5000): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const timer = setTimeout(() => sock.destroy(), untilMs);
    sock.on('data', (d) => (got += d.toString('latin1')));
    sock.on('error', (err) => (got ? undefined : reject(err)));
    sock.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    sock.write(request);
  });
}

/** Parses a raw response into a Reply (JSON body). */
function parseRaw(raw: string): Reply {
  const [head = '', body = ''] = raw.split('\r\n\r\n');
  const status = Number(head.split(' ')[1]);
  return { status, body: JSON.parse(body) as unknown, headers: {} };
}

/** A streamed PUT /api/isos/:name over a real connection; `chunks` are written one after the other. */
function streamUpload(port: number, name: string, chunks: AsyncIterable<Buffer> | Buffer[], headers: Record<string, string> = {}): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, agent: false, method: 'PUT', path: `/api/isos/${name}`, headers: { 'content-type': 'application/octet-stream', ...headers } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as unknown, headers: res.headers }));
        res.on('error', reject);
      },
    );
    req.on('error', () => undefined); // the server may cut the upload once it has answered
    void (async () => {
      for await (const c of chunks) if (!req.destroyed) req.write(c);
      if (!req.destroyed) req.end();
    })();
  });
}

const isoFiles = (s: InProcessServer) => fs.readdirSync(path.join(s.dataDir, 'isos'));

export function hostSuite(): void {
  describe('host-wide limits', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess({ env: { MAX_VM_MEMORY_TOTAL: '1024' } });
    });
    afterAll(async () => {
      await s.close();
    });

    it('a VM that would pass MAX_VM_MEMORY_TOTAL is 409 LIMIT_EXCEEDED (create and resize); health reports the totals', async () => {
      const a = ((await s.api('POST', '/vms', { name: 'a', cpus: 1, memory: 800 })).body as VmEnvelope).vm;
      const over = 'The VMs would declare 1100 MiB of memory in total; the host-wide limit is 1024 MiB (800 MiB is declared by the other VMs)';
      expectError(await s.api('POST', '/vms', { name: 'b', cpus: 1, memory: 300 }), 'LIMIT_EXCEEDED', 409, over);
      const b = ((await s.api('POST', '/vms', { name: 'b', cpus: 1, memory: 200 })).body as VmEnvelope).vm;
      expectError(await s.api('PATCH', `/vms/${b.id}/resources`, { memory: 300 }), 'LIMIT_EXCEEDED', 409, over);
      expect((await s.api('PATCH', `/vms/${a.id}/resources`, { memory: 824 })).status).toBe(200);
      const h = await s.api('GET', '/health');
      expectShape(Health, h.body);
      expect((h.body as Health).limits).toEqual({ vmMemoryDeclaredMiB: 1024, vmMemoryTotalMiB: 1024, maxVmMemoryTotalMiB: 1024, memoryOvercommit: null });
    });
  });

  describe('a server restart on the same data dir', () => {
    it('a VM that kept running is adopted (its state, its pid); one that did not is marked stopped and its resources released', async () => {
      const first = await startInProcess({ keepDir: true });
      const { dataDir, runtime } = first;
      let kept: string;
      let gone: string;
      try {
        kept = ((await first.api('POST', '/vms', { name: 'kept', cpus: 1, memory: 64 })).body as VmEnvelope).vm.id;
        gone = ((await first.api('POST', '/vms', { name: 'gone', cpus: 1, memory: 64 })).body as VmEnvelope).vm.id;
        await first.api('POST', `/vms/${kept}/start`);
        await first.api('POST', `/vms/${gone}/start`);
        await first.app.close(); // lets go of the VMs without stopping them
        expect(runtime.detached).toBe(1);
      } catch (err) {
        fs.rmSync(dataDir, { recursive: true, force: true });
        throw err;
      }
      // The new server's runtime finds one of the two QEMUs still running (paused meanwhile).
      const next = new FakeRuntime(path.join(dataDir, 'run'));
      const pid = 12_345_678;
      next.survivors.set(kept, { state: 'paused', process: { pid, pidStart: '42' } });
      const second = await startInProcess({ dataDir, runtime: next });
      try {
        const k = ((await second.api('GET', `/vms/${kept}`)).body as VmEnvelope).vm;
        expect(k).toMatchObject({ status: 'paused', pid });
        const g = ((await second.api('GET', `/vms/${gone}`)).body as VmEnvelope).vm;
        expect(g).toMatchObject({ status: 'stopped', pid: null, startedAt: null });
        expect(next.released).toEqual([gone]);
        expect((await second.api('POST', `/vms/${kept}/resume`)).status).toBe(200);
        expect((await second.api('POST', `/vms/${kept}/stop`)).status).toBe(200);
        expect(next.running(kept)).toBe(false);
      } finally {
        await second.close();
      }
    });
  });

  describe('every VNC port taken', () => {
    let s: InProcessServer;
    beforeAll(async () => {
      s = await startInProcess();
    });
    afterAll(async () => {
      await s.close();
    });

    it('a new VM is 409 NO_FREE_PORT', async () => {
      // 59,636 VMs through the API would take long: the rows go straight into the database.
      const db = new Database(path.join(s.dataDir, 'db.sqlite'));
      try {
        const insert = db.prepare('INSERT INTO vms (id, name, cpus, memory, vnc_port, mac, created_at) VALUES (?, ?, 1, 16, ?, ?, ?)');
        const now = new Date().toISOString();
        db.transaction(() => {
          for (let p = 5900; p <= 65535; p++) {
            insert.run(crypto.randomUUID(), `filler-${p}`, p, `52:54:01:00:${((p >> 8) & 255).toString(16).padStart(2, '0')}:${(p & 255).toString(16).padStart(2, '0')}`, now);
          }
        })();
        expectError(await s.api('POST', '/vms', { name: 'one-too-many', cpus: 1, memory: 16 }), 'NO_FREE_PORT', 409, 'No free VNC port is left for a new VM');
        db.prepare("DELETE FROM vms WHERE name = 'filler-5900'").run();
        const fits = await s.api('POST', '/vms', { name: 'fits', cpus: 1, memory: 16 });
        expect(fits.status).toBe(201);
        expect((fits.body as VmEnvelope).vm.vnc_port).toBe(5900);
      } finally {
        db.prepare("DELETE FROM vms WHERE name LIKE 'filler-%'").run();
        db.close();
      }
    });
  });

  describe('over a real loopback socket', () => {
    let s: InProcessServer;
    let port: number;
    beforeAll(async () => {
      s = await startInProcess({ env: { MAX_UPLOAD_MB: '1', UPLOAD_IDLE_TIMEOUT_S: '1', MAX_SSE_PER_CLIENT: '1' } });
      await s.app.listen({ host: '127.0.0.1', port: 0 });
      port = (s.app.server.address() as net.AddressInfo).port;
    });
    afterAll(async () => {
      await s.close();
    });

    it('headers over the parser limit are 431 HEADERS_TOO_LARGE; an absolute-form target is 400 BAD_REQUEST', async () => {
      const big = await rawExchange(port, `GET /api/vms HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: ${'a'.repeat(32 * 1024)}\r\n\r\n`);
      expectError(parseRaw(big), 'HEADERS_TOO_LARGE', 431, 'The request headers are too large');
      const abs = await rawExchange(port, 'GET http://127.0.0.1/api/vms HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n');
      expectError(parseRaw(abs), 'BAD_REQUEST', 400, 'The request target must be a path starting with / (origin-form)');
    });

    it("GET /api/events streams the contract's events; a second stream from the client is 429 RATE_LIMITED", async () => {
      const events: unknown[] = [];
      const req = http.get({ host: '127.0.0.1', port, agent: false, path: '/api/events' });
      const res = await new Promise<http.IncomingMessage>((r) => req.once('response', r));
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/event-stream/);
      let buf = '';
      const seen = new Promise<void>((resolve) => {
        res.on('data', (d: Buffer) => {
          buf += d.toString();
          for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
            const block = buf.slice(0, i);
            buf = buf.slice(i + 2);
            const data = block.split('\n').find((l) => l.startsWith('data: '));
            if (data) events.push(JSON.parse(data.slice(6)));
            if (events.length >= 2) resolve();
          }
        });
      });
      try {
        const second = await new Promise<Reply>((resolve) => {
          http.get({ host: '127.0.0.1', port, agent: false, path: '/api/events' }, (r) => {
            let t = '';
            r.on('data', (d: Buffer) => (t += d.toString()));
            r.on('end', () => resolve({ status: r.statusCode ?? 0, body: JSON.parse(t) as unknown, headers: r.headers }));
          });
        });
        expectError(second, 'RATE_LIMITED', 429, 'At most 1 event streams per client; close one first');
        const vm = ((await s.api('POST', '/vms', { name: 'evented', cpus: 1, memory: 64 })).body as VmEnvelope).vm;
        await s.api('DELETE', `/vms/${vm.id}`);
        await seen;
      } finally {
        req.destroy();
      }
      for (const ev of events) expectShape(ServerEvent, ev);
      expect(events.map((e) => (e as { type: string }).type)).toEqual(['vm.created', 'vm.deleted']);
    });

    it('a streamed upload without a declared length over the limit is 413 PAYLOAD_TOO_LARGE, no file left', async () => {
      const max = s.config.maxUploadBytes;
      const chunk = isoBytes(256 * 1024);
      const r = await streamUpload(port, 'stream.iso', Array.from({ length: 8 }, () => chunk), { 'transfer-encoding': 'chunked' });
      expectError(r, 'PAYLOAD_TOO_LARGE', 413, `The ISO is larger than the limit of ${max} bytes`);
      expect(isoFiles(s)).toEqual([]);
    });

    it('an upload that stalls is 408 REQUEST_TIMEOUT; one whose client goes away half-way leaves no file either', async () => {
      let stop!: () => void;
      const stopped = new Promise<void>((r) => (stop = r));
      async function* stall() {
        yield isoBytes(40 * 1024);
        await stopped; // sends nothing more until the server has answered
      }
      const r = await streamUpload(port, 'stall.iso', stall(), { 'content-length': String(80 * 1024) });
      stop();
      expectError(r, 'REQUEST_TIMEOUT', 408, 'The upload sent nothing for 1 s and was aborted');
      expect(isoFiles(s)).toEqual([]);

      const head = `PUT /api/isos/short.iso HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: ${80 * 1024}\r\n\r\n`;
      await rawExchange(port, Buffer.concat([Buffer.from(head), isoBytes(40 * 1024)]), 300);
      // The server notices the connection went away and removes what it had written.
      for (let i = 0; i < 100 && isoFiles(s).length > 0; i++) await new Promise((r) => setTimeout(r, 20));
      expect(isoFiles(s)).toEqual([]);
    });
  });
}
