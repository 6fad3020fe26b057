/**
 * The events a real server sends on GET /api/events match the contract's ServerEvent schemas: every
 * message of a VM's and a disk's life (create, change, start, stop, delete) and of the ISO library.
 */
import { ServerEvent, SERVER_EVENT_TYPES } from '@qemu-manager/contract';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TestServer, makeDataDir, waitFor } from './harness.js';

// The formats the contract uses (the server checks them with its own validator).
FormatRegistry.Set('uuid', (v) => /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v));
FormatRegistry.Set('date-time', (v) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/.test(v) && !Number.isNaN(Date.parse(v)));

/** The SSE messages of GET /api/events as they arrive: the `event:` name and the parsed `data`. */
class Stream {
  messages: Array<{ name: string; data: any }> = [];
  private ctrl = new AbortController();
  private reading: Promise<void> = Promise.resolve();

  /** Resolves once the server has answered and written its first comment (the stream is subscribed). */
  async open(url: string): Promise<this> {
    const r = await fetch(`${url}/api/events`, { signal: this.ctrl.signal });
    expect(r.status).toBe(200);
    expect(r.headers.get('content-type')).toMatch(/^text\/event-stream/);
    const reader = r.body!.getReader();
    const dec = new TextDecoder();
    let buf = dec.decode((await reader.read()).value, { stream: true });
    this.reading = (async () => {
      for (;;) {
        let i: number;
        while ((i = buf.indexOf('\n\n')) >= 0) {
          const lines = buf.slice(0, i).split('\n');
          buf = buf.slice(i + 2);
          const name = lines.find((l) => l.startsWith('event: '))?.slice(7);
          const data = lines.find((l) => l.startsWith('data: '))?.slice(6);
          if (name !== undefined && data !== undefined) this.messages.push({ name, data: JSON.parse(data) });
        }
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
      }
    })().catch(() => undefined);
    return this;
  }

  get events(): any[] {
    return this.messages.map((m) => m.data);
  }

  close(): Promise<void> {
    this.ctrl.abort();
    return this.reading;
  }
}

let server: TestServer;
let events: Stream;

beforeAll(async () => {
  server = await new TestServer(makeDataDir()).start();
  events = await new Stream().open(server.url);
});
afterAll(async () => {
  await events?.close();
  await server?.dispose();
});

/** The schema errors of one event, in words (empty when it matches). */
function problems(ev: unknown): string[] {
  return [...Value.Errors(ServerEvent, ev)].map((e) => `${e.path || '/'}: ${e.message}`);
}

describe('server events', () => {
  it('the schemas reject what the server must not send', () => {
    expect(Value.Check(ServerEvent, { type: 'vm.deleted', id: 'not-a-uuid' })).toBe(false);
    expect(Value.Check(ServerEvent, { type: 'vm.updated', vm: { id: 'x' } })).toBe(false);
    expect(Value.Check(ServerEvent, { type: 'iso.changed', extra: 1 })).toBe(false);
    expect(Value.Check(ServerEvent, { type: 'vm.renamed' })).toBe(false);
    expect(Value.Check(ServerEvent, { type: 'iso.changed' })).toBe(true);
  });

  it('every event of a VM, a disk and an ISO matches its schema', async () => {
    const created = await server.api('POST', '/vms', { name: 'ev-vm', cpus: 1, memory: 64 });
    expect(created.status).toBe(201);
    const vmId: string = created.body.vm.id;
    expect((await server.api('PATCH', `/vms/${vmId}/resources`, { memory: 96 })).status).toBe(200);
    // Running: pid, startedAt and lastCommand are filled in.
    expect((await server.api('POST', `/vms/${vmId}/start`)).status).toBe(200);
    expect((await server.api('POST', `/vms/${vmId}/stop`)).status).toBe(200);

    // Backups: one that fails (its VM directory in the target is a file), one made and deleted.
    const bdisk = await server.api('POST', '/disks', { name: 'ev-bk', size: 1, format: 'qcow2' });
    await waitFor(async () => (await server.api('GET', `/disks/${bdisk.body.disk.id}`)).body.disk?.status === 'ready', 20_000, 'backup disk ready');
    expect((await server.api('POST', `/vms/${vmId}/disks/attach`, { diskPath: bdisk.body.disk.path })).status).toBe(200);
    const targetDir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-ev-target-'));
    try {
      expect((await server.api('POST', '/backup-targets', { name: 'ev', path: targetDir })).status).toBe(201);
      fs.writeFileSync(path.join(targetDir, vmId), 'in the way');
      const failing = await server.api('POST', `/vms/${vmId}/backups`, { target: 'ev' });
      expect(failing.status, JSON.stringify(failing.body)).toBe(202);
      await waitFor(() => events.events.some((e) => e.type === 'backup.failed' && e.task === failing.body.task.id), 20_000, 'backup.failed');
      fs.rmSync(path.join(targetDir, vmId));
      const made = await server.api('POST', `/vms/${vmId}/backups`, { target: 'ev' });
      expect(made.status, JSON.stringify(made.body)).toBe(202);
      const created = await waitFor(() => events.events.find((e) => e.type === 'backup.created'), 60_000, 'backup.created');
      const backupId = created.type === 'backup.created' ? created.backup.id : '';
      expect((await server.api('DELETE', `/backups/${backupId}`)).status).toBe(202);
      await waitFor(() => events.events.some((e) => e.type === 'backup.deleted' && e.id === backupId), 20_000, 'backup.deleted');
      expect((await server.api('DELETE', '/backup-targets/ev')).status).toBeLessThan(300);
    } finally {
      fs.rmSync(targetDir, { recursive: true, force: true });
    }
    expect((await server.api('POST', `/vms/${vmId}/disks/detach`, { diskPath: bdisk.body.disk.path })).status).toBe(200);
    expect((await server.api('DELETE', `/disks/${bdisk.body.disk.id}`)).status).toBe(200);
    expect((await server.api('DELETE', `/vms/${vmId}`)).status).toBe(200);

    const disk = await server.api('POST', '/disks', { name: 'ev-disk', size: 1, format: 'qcow2' });
    expect(disk.status).toBe(201);
    const diskId: string = disk.body.disk.id;
    await waitFor(async () => (await server.api('GET', `/disks/${diskId}`)).body.disk?.status === 'ready', 20_000, 'disk ready');
    expect((await server.api('DELETE', `/disks/${diskId}`)).status).toBe(200);

    const iso = Buffer.alloc(64 * 1024);
    iso.write('CD001', 0x8001, 'latin1');
    iso[0x8000] = 1;
    const up = await server.api('PUT', '/isos/ev.iso', iso, { 'content-type': 'application/octet-stream' });
    expect(up.status, JSON.stringify(up.body)).toBe(201);
    expect((await server.api('DELETE', '/isos/ev.iso')).status).toBe(200);

    await waitFor(() => events.events.some((e) => e.type === 'disk.deleted' && e.id === diskId), 10_000, 'disk.deleted');
    await waitFor(() => events.events.filter((e) => e.type === 'iso.changed').length >= 2, 10_000, 'iso.changed twice');

    const bad = events.events.map((e) => ({ e, why: problems(e) })).filter((x) => x.why.length > 0);
    expect(bad, JSON.stringify(bad, null, 2)).toEqual([]);
    // The SSE event name is the event's type.
    expect(events.messages.filter((m) => m.name !== m.data.type)).toEqual([]);
    // Every kind of event was seen (so each schema was checked against something real).
    expect(new Set(events.events.map((e) => e.type))).toEqual(new Set(SERVER_EVENT_TYPES));
    const running = events.events.find((e) => e.type === 'vm.updated' && e.vm.id === vmId && e.vm.status === 'running');
    expect(running?.vm.pid).toEqual(expect.any(Number));
  });
});
