import { NotificationPayload } from '@qemu-manager/contract';
import { FormatRegistry } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { describe, expect, it } from 'vitest';
import { buildArgv, type ArgvInput } from '../qemu/argv.js';
import { stateEventOf } from '../qemu/runtime.js';
import { EndpointQueue, MAX_ATTEMPTS, ntfyRequest, QUEUE_LIMIT, retryDelayMs, webhookRequest, type AttemptOutcome } from './delivery.js';
import type { EndpointRecord } from './repo.js';
import { checkUrl, LowSpaceTracker, payloads, wants } from './service.js';

if (!FormatRegistry.Has('date-time')) FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const silent = { warn: () => undefined, info: () => undefined, error: () => undefined, debug: () => undefined } as never;

describe('alerts: backoff, matching, payloads (issue 14)', () => {
  it('the backoff doubles from the base and stops after MAX_ATTEMPTS', () => {
    expect([1, 2, 3, 4, 5].map((a) => retryDelayMs(a, 30_000))).toEqual([30_000, 60_000, 120_000, 240_000, null]);
    expect(MAX_ATTEMPTS).toBe(5);
    expect(retryDelayMs(1, 20, 2)).toBe(20);
    expect(retryDelayMs(2, 20, 2)).toBeNull();
  });

  it('an endpoint gets the events it named, never another one and never a test of another endpoint', () => {
    const e = { events: ['vm.crashed', 'storage.low'] } as Pick<EndpointRecord, 'events'>;
    expect(wants(e, 'vm.crashed')).toBe(true);
    expect(wants(e, 'storage.low')).toBe(true);
    expect(wants(e, 'task.failed')).toBe(false);
    expect(wants(e, 'server.started')).toBe(false);
    expect(wants(e, 'test')).toBe(false);
  });

  it('payloads match the contract; long task errors are bounded; ntfy headers are ASCII', () => {
    const at = '2026-01-01T00:00:00.000Z';
    const all = [
      payloads.crashed({ id: 'v1', name: 'web' }, 'exited', at),
      payloads.crashed({ id: 'v1', name: 'web' }, 'panicked', at),
      payloads.taskFailed({ id: 't1', kind: 'backup.create', error: 'x'.repeat(5000) }, at),
      payloads.storageLow({ kind: 'backup-target', name: 'nas', path: '/mnt/nas', freeBytes: 5, totalBytes: 100 }, at),
      payloads.started('1.0.0', at),
      payloads.test('ops', at),
    ];
    for (const p of all) expect(Value.Check(NotificationPayload, p)).toBe(true);
    expect(all[1].message).toMatch(/guest panicked/);
    expect(all[2].task!.error!.length).toBeLessThanOrEqual(501);
    expect(all[3].message).toBe('Backup target nas has 5 % free (under 10 %)');
    const w = webhookRequest(all[0]);
    expect(JSON.parse(w.body)).toEqual({ event: 'vm.crashed', vm: { id: 'v1', name: 'web' }, message: all[0].message, at });
    const n = ntfyRequest({ ...all[0], event: 'vm.crashed', message: 'VM "wéb\r\nX-Evil: 1" died' });
    expect(n.headers).toMatchObject({ title: 'QEMU Manager: vm.crashed', tags: 'rotating_light' });
    expect(n.body).toContain('wéb');
  });

  it('low space is told once per crossing, again only after it rose back', () => {
    const t = new LowSpaceTracker();
    const at = (free: number | null) => [{ kind: 'storage-root', name: '/d', path: '/d', freeBytes: free, totalBytes: free === null ? null : 100 }];
    expect(t.check(at(50))).toEqual([]);
    expect(t.check(at(9)).map((p) => p.freeBytes)).toEqual([9]);
    expect(t.check(at(5))).toEqual([]); // still low: not again
    expect(t.check(at(null))).toEqual([]); // unreadable: no change
    expect(t.check(at(4))).toEqual([]);
    expect(t.check(at(10))).toEqual([]); // back to 10 %: re-armed
    expect(t.check(at(9.9)).length).toBe(1);
  });

  it('URLs: http and https only, no credentials', () => {
    expect(checkUrl('https://ntfy.sh/my-topic')).toBe('https://ntfy.sh/my-topic');
    for (const bad of ['ftp://x/y', 'file:///etc/passwd', 'javascript:alert(1)', 'gopher://x', 'nope', 'http://a:b@x/']) expect(() => checkUrl(bad)).toThrow();
  });

  it('a queue retries a failed message, keeps order, and drops the oldest beyond its bound', async () => {
    const outcomes: AttemptOutcome[] = [
      { ok: false, status: 500, error: 'HTTP 500' },
      { ok: true, status: 200, error: null },
    ];
    const sent: string[] = [];
    const recorded: Array<{ attempt: number; ok: boolean; final: boolean }> = [];
    const endpoint = { id: 'e', name: 'e', kind: 'webhook', url: 'http://127.0.0.1:1/', smtp: null, events: ['vm.crashed'], createdAt: '' } as EndpointRecord;
    let done!: () => void;
    const finished = new Promise<void>((r) => (done = r));
    const q = new EndpointQueue({
      endpoint: () => endpoint,
      record: (d) => {
        recorded.push({ attempt: d.attempt, ok: d.ok, final: d.final });
        if (recorded.length === 3) done();
      },
      log: silent,
      retryBaseMs: 1,
      send: async (_e, p) => {
        sent.push(p.message);
        return outcomes.shift() ?? { ok: true, status: 200, error: null };
      },
    });
    q.push(payloads.test('a'));
    q.push(payloads.test('b'));
    await finished;
    expect(sent.map((m) => m.match(/"(.)"/)![1])).toEqual(['a', 'a', 'b']);
    expect(recorded).toEqual([
      { attempt: 1, ok: false, final: false },
      { attempt: 2, ok: true, final: true },
      { attempt: 1, ok: true, final: true },
    ]);
    q.close();

    // bound: a queue whose sends never end keeps at most QUEUE_LIMIT waiting
    const stuck = new EndpointQueue({ endpoint: () => endpoint, record: () => undefined, log: silent, retryBaseMs: 1, send: () => new Promise(() => undefined) });
    for (let i = 0; i < QUEUE_LIMIT + 25; i++) stuck.push(payloads.test(String(i)));
    expect(stuck.length).toBe(QUEUE_LIMIT);
    stuck.close();
  });

  it('pvpanic: every VM gets the ISA device, and GUEST_PANICKED becomes the runtime event panicked', () => {
    expect(stateEventOf('GUEST_PANICKED')).toBe('panicked');
    expect(stateEventOf('SHUTDOWN')).toBe('shutdown');
    expect(stateEventOf('GUEST_CRASHLOADED')).toBeNull();
    const argv = buildArgv({
      qemuBinary: 'qemu-system-x86_64',
      vmId: '0b9f7c1e-0000-4000-8000-000000000001',
      name: 'x',
      cpus: 1,
      memoryMiB: 64,
      accel: 'tcg',
      vnc: { socket: '/r/vnc.sock' },
      qmpSocket: '/r/qmp.sock',
      pidFile: '/r/qemu.pid',
      mac: '52:54:00:00:00:01',
      disks: [],
      iso: null,
      serialFd: 3,
    } satisfies ArgvInput);
    const i = argv.indexOf('pvpanic');
    expect(i).toBeGreaterThan(0);
    expect(argv[i - 1]).toBe('-device');
  });
});
