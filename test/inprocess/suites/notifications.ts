/**
 * Alerts (issue 14): the notification routes and refusals, and deliveries to a local receiver on
 * 127.0.0.1: a test message (webhook and ntfy), a failed task, a crash (an exit nobody asked for, a
 * guest panic) and not a stop, retries (500, 500, 200: three attempts), a redirect not followed, a
 * hung endpoint that holds up nothing, and server.started after a restart.
 */
import {
  Notification,
  NotificationDeliveriesEnvelope,
  NotificationListEnvelope,
  NotificationPayload,
  NotificationTestResult,
  type VmEnvelope,
} from '@qemu-manager/contract';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Receiver } from '../../alerts/receiver.js';
import { makeTempDir, startInProcess, type InProcessServer } from '../app.js';
import { expectError, expectShape } from '../check.js';

const env = { NOTIFY_RETRY_BASE_MS: '20', METRICS_INTERVAL_MS: '3600000', NOTIFY_STORAGE_CHECK_MS: '86400000' };

export function notificationSuite(): void {
  describe('alerts: notifications (issue 14)', () => {
    let s: InProcessServer;
    let rx: Receiver;
    const make = async (body: Record<string, unknown>): Promise<Notification> => {
      const r = await s.api('POST', '/notifications', body);
      expect(r.status).toBe(201);
      expectShape(Notification, r.body.notification);
      return r.body.notification as Notification;
    };
    const deliveries = async (id: string) => {
      const r = await s.api('GET', `/notifications/${id}/deliveries`);
      expect(r.status).toBe(200);
      expectShape(NotificationDeliveriesEnvelope, r.body);
      return (r.body as NotificationDeliveriesEnvelope).deliveries;
    };
    const newVm = async (name: string) => ((await s.api('POST', '/vms', { name, cpus: 1, memory: 64 })).body as VmEnvelope).vm.id;

    beforeAll(async () => {
      rx = await new Receiver().start();
      s = await startInProcess({ env });
    });
    afterAll(async () => {
      await s.close();
      await rx.close();
    });

    it('creates, lists (no SMTP password), deletes; refuses bad bodies and unknown ids', async () => {
      const hook = await make({ name: 'hook', kind: 'webhook', url: `${rx.base}/crud`, events: ['vm.crashed'] });
      expect(hook).toMatchObject({ kind: 'webhook', url: `${rx.base}/crud`, smtp: null, events: ['vm.crashed'] });
      const mail = await make({
        name: 'mail',
        kind: 'smtp',
        smtp: { host: '127.0.0.1', port: 2525, secure: false, user: 'u', password: 'hunter2-secret', from: 'qm@example.test', to: ['ops@example.test'] },
        events: ['task.failed', 'storage.low'],
      });
      expect(mail.smtp).toMatchObject({ host: '127.0.0.1', user: 'u', passwordSet: true });
      const list = await s.api('GET', '/notifications');
      expect(list.status).toBe(200);
      expectShape(NotificationListEnvelope, list.body);
      expect((list.body as NotificationListEnvelope).notifications.map((n) => n.name)).toEqual(['hook', 'mail']);
      expect(JSON.stringify(list.body)).not.toContain('hunter2-secret');

      const bad = (body: Record<string, unknown>) => s.api('POST', '/notifications', body);
      expectError(await bad({ name: 'x', kind: 'irc', url: `${rx.base}/x`, events: ['vm.crashed'] }), 'VALIDATION', 400, /kind/);
      expectError(await bad({ name: 'x', kind: 'webhook', url: 'ftp://127.0.0.1/x', events: ['vm.crashed'] }), 'VALIDATION', 400, /http or https/);
      expectError(await bad({ name: 'x', kind: 'ntfy', url: 'file:///etc/passwd', events: ['vm.crashed'] }), 'VALIDATION', 400, /http or https/);
      expectError(await bad({ name: 'x', kind: 'webhook', url: 'not a url', events: ['vm.crashed'] }), 'VALIDATION', 400, /not a valid URL/);
      expectError(await bad({ name: 'x', kind: 'webhook', url: 'http://u:p@127.0.0.1/x', events: ['vm.crashed'] }), 'VALIDATION', 400, /user or password/);
      expectError(await bad({ name: 'x', kind: 'webhook', url: `${rx.base}/x`, events: ['vm.exploded'] }), 'VALIDATION', 400, /events/);
      expectError(await bad({ name: 'x', kind: 'webhook', url: `${rx.base}/x`, events: [] }), 'VALIDATION', 400, /events/);
      expectError(await bad({ name: 'x', kind: 'webhook', events: ['vm.crashed'] }), 'VALIDATION', 400, /needs a url/);
      expectError(await bad({ name: 'x', kind: 'smtp', url: `${rx.base}/x`, events: ['vm.crashed'] }), 'VALIDATION', 400, /smtp settings/);
      expect((await s.api('GET', '/notifications')).body.notifications).toHaveLength(2); // nothing was added

      const unknown = '00000000-0000-4000-8000-000000000000';
      expectError(await s.api('DELETE', `/notifications/${unknown}`), 'NOT_FOUND', 404, /not found/);
      expectError(await s.api('POST', `/notifications/${unknown}/test`), 'NOT_FOUND', 404, /not found/);
      expectError(await s.api('GET', `/notifications/${unknown}/deliveries`), 'NOT_FOUND', 404, /not found/);

      for (const n of [hook, mail]) {
        const r = await s.api('DELETE', `/notifications/${n.id}`);
        expect(r.status).toBe(200);
      }
      expect((await s.api('GET', '/notifications')).body.notifications).toEqual([]);
    });

    it('sends a test message now (webhook JSON, ntfy text with Title and Tags) and logs it', async () => {
      const hook = await make({ name: 'test-hook', kind: 'webhook', url: `${rx.base}/test-hook`, events: ['server.started'] });
      const r = await s.api('POST', `/notifications/${hook.id}/test`);
      expect(r.status).toBe(200);
      expectShape(NotificationTestResult, r.body);
      expect(r.body.delivery).toMatchObject({ ok: true, status: 200, event: 'test', attempt: 1, final: true });
      const [got] = rx.on('/test-hook');
      expect(got.headers['content-type']).toBe('application/json');
      expectShape(NotificationPayload, got.json);
      expect(got.json).toMatchObject({ event: 'test', message: expect.stringContaining('test-hook') });
      expect(await deliveries(hook.id)).toMatchObject([{ event: 'test', ok: true, status: 200 }]);

      const ntfy = await make({ name: 'phone', kind: 'ntfy', url: `${rx.base}/qm-topic`, events: ['vm.crashed'] });
      expect((await s.api('POST', `/notifications/${ntfy.id}/test`)).body.delivery).toMatchObject({ ok: true });
      const [n] = rx.on('/qm-topic');
      expect(n.headers).toMatchObject({ title: 'QEMU Manager: test', tags: 'white_check_mark' });
      expect(n.body).toContain('A test message for "phone"');

      // an endpoint that answers 500: the outcome says so
      rx.script('/test-500', [500]);
      const down = await make({ name: 'down', kind: 'webhook', url: `${rx.base}/test-500`, events: ['vm.crashed'] });
      expect((await s.api('POST', `/notifications/${down.id}/test`)).body.delivery).toMatchObject({ ok: false, status: 500, error: 'HTTP 500' });
      // a redirect (here to file:) is not followed
      rx.script('/moved', ['redirect']);
      const moved = await make({ name: 'moved', kind: 'webhook', url: `${rx.base}/moved`, events: ['vm.crashed'] });
      expect((await s.api('POST', `/notifications/${moved.id}/test`)).body.delivery).toMatchObject({ ok: false, status: 302, error: /redirect/ });
      for (const e of [hook, ntfy, down, moved]) await s.api('DELETE', `/notifications/${e.id}`);
    });

    it('a failed task is told to the endpoints that want task.failed', async () => {
      const want = await make({ name: 'tasks', kind: 'webhook', url: `${rx.base}/tasks`, events: ['task.failed'] });
      const other = await make({ name: 'other', kind: 'webhook', url: `${rx.base}/not-tasks`, events: ['vm.crashed'] });
      rx.script('/missing.qcow2', [404]);
      const r = await s.api('POST', '/disks/import', { name: 'will-fail', url: `${rx.base}/missing.qcow2` });
      expect(r.status).toBe(202);
      const taskId = r.body.task.id as string;
      await rx.until(() => rx.on('/tasks').length > 0);
      const [got] = rx.on('/tasks');
      expectShape(NotificationPayload, got.json);
      expect(got.json).toMatchObject({ event: 'task.failed', task: { id: taskId, kind: 'disk.import', error: expect.stringMatching(/404/) } });
      expect(rx.on('/not-tasks')).toEqual([]);
      for (const e of [want, other]) await s.api('DELETE', `/notifications/${e.id}`);
    });

    it('vm.crashed: an exit nobody asked for and a guest panic are told once each; a stop is not', async () => {
      const crash = await make({ name: 'crash', kind: 'webhook', url: `${rx.base}/crash`, events: ['vm.crashed'] });
      const a = await newVm('crash-a');
      expect((await s.api('POST', `/vms/${a}/start`)).status).toBe(200);
      s.runtime.exit(a); // QEMU died
      await rx.until(() => rx.on('/crash').length >= 1);
      expect(rx.on('/crash')[0].json).toMatchObject({ event: 'vm.crashed', vm: { id: a, name: 'crash-a' }, message: /QEMU process exited/ });
      expect((await s.api('GET', `/vms/${a}`)).body.vm.status).toBe('stopped');

      // a stop through the API, then a panic that ends in an exit: one message, for the panic
      expect((await s.api('POST', `/vms/${a}/start`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${a}/stop`)).status).toBe(200);
      expect((await s.api('POST', `/vms/${a}/start`)).status).toBe(200);
      s.runtime.emit({ vmId: a, type: 'panicked' });
      s.runtime.exit(a);
      await rx.until(() => rx.on('/crash').length >= 2);
      // a marker after: everything before it was delivered in order (one queue per endpoint)
      await s.api('POST', `/notifications/${crash.id}/test`);
      const bodies = rx.on('/crash').map((g) => g.json);
      expect(bodies.map((b) => b.event)).toEqual(['vm.crashed', 'vm.crashed', 'test']);
      expect(bodies[1]).toMatchObject({ vm: { id: a }, message: /guest panicked/ });
      await s.api('DELETE', `/notifications/${crash.id}`);
    });

    it('retries with backoff: 500, 500, then 200 is three attempts, logged', async () => {
      rx.script('/flaky', [500, 500]);
      const flaky = await make({ name: 'flaky', kind: 'webhook', url: `${rx.base}/flaky`, events: ['vm.crashed'] });
      const b = await newVm('crash-b');
      expect((await s.api('POST', `/vms/${b}/start`)).status).toBe(200);
      s.runtime.exit(b);
      await rx.until(() => rx.on('/flaky').length >= 3);
      await expect.poll(async () => (await deliveries(flaky.id)).length, { timeout: 10_000 }).toBe(3);
      expect(await deliveries(flaky.id)).toMatchObject([
        { attempt: 3, ok: true, status: 200, final: true },
        { attempt: 2, ok: false, status: 500, final: false },
        { attempt: 1, ok: false, status: 500, final: false },
      ]);
      expect(rx.on('/flaky').every((g) => g.json.event === 'vm.crashed')).toBe(true);
      await s.api('DELETE', `/notifications/${flaky.id}`);
    });

    it('a hung endpoint holds up neither requests nor the other endpoints', async () => {
      rx.script('/hung', ['hang']);
      const hung = await make({ name: 'hung', kind: 'webhook', url: `${rx.base}/hung`, events: ['vm.crashed'] });
      const fine = await make({ name: 'fine', kind: 'webhook', url: `${rx.base}/fine`, events: ['vm.crashed'] });
      const c = await newVm('crash-c');
      expect((await s.api('POST', `/vms/${c}/start`)).status).toBe(200);
      s.runtime.exit(c);
      await rx.until(() => rx.on('/hung').length >= 1 && rx.on('/fine').length >= 1);
      // the hung request is still open; the API answers and the other endpoint got its message
      expect((await s.api('GET', '/notifications')).status).toBe(200);
      expect((await s.api('POST', `/vms/${c}/start`)).status).toBe(200);
      expect(await deliveries(hung.id)).toEqual([]);
      await expect.poll(async () => (await deliveries(fine.id)).map((d) => d.ok), { timeout: 10_000 }).toEqual([true]);
      for (const e of [hung, fine]) await s.api('DELETE', `/notifications/${e.id}`);
    });

    it('server.started goes out when the server (re)starts', async () => {
      const dir = makeTempDir();
      const first = await startInProcess({ env, dataDir: dir, keepDir: true });
      expect((await first.api('POST', '/notifications', { name: 'boot', kind: 'webhook', url: `${rx.base}/boot`, events: ['server.started'] })).status).toBe(201);
      await first.close();
      const second = await startInProcess({ env, dataDir: dir });
      try {
        await second.api('GET', '/notifications'); // ready
        await rx.until(() => rx.on('/boot').length >= 1);
        expect(rx.on('/boot')[0].json).toMatchObject({ event: 'server.started', message: /started/ });
      } finally {
        await second.close();
      }
    });
  });
}
