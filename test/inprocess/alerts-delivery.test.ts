/**
 * Alerts (issue 14), real deliveries beyond HTTP: a message over real SMTP (nodemailer against a
 * local SMTP server on 127.0.0.1 that asks for AUTH), and storage.low when a storage root — a real
 * 1 MiB tmpfs the test mounts — drops under 10 % free. The server is in-process (no QEMU needed).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Receiver } from '../alerts/receiver.js';
import { SmtpReceiver } from '../alerts/smtp-receiver.js';
import { makeTempDir, startInProcess, type InProcessServer } from './app.js';

const isRoot = process.getuid?.() === 0;
let s: InProcessServer;
let smtp: SmtpReceiver;
let rx: Receiver;
let mnt = '';
let mounted = false;

beforeAll(async () => {
  smtp = await new SmtpReceiver().start();
  rx = await new Receiver().start();
  mnt = makeTempDir('qm-alerts-tmpfs-');
  if (isRoot) {
    const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=1m,mode=0700', 'qm-test-tmpfs', mnt], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`mount tmpfs: ${r.stderr}`);
    mounted = true;
  }
  s = await startInProcess({ env: { NOTIFY_RETRY_BASE_MS: '20', METRICS_INTERVAL_MS: '3600000', NOTIFY_STORAGE_CHECK_MS: '200', STORAGE_ROOTS: mnt } });
});

afterAll(async () => {
  await s?.close();
  await smtp?.close();
  await rx?.close();
  if (mounted) spawnSync('umount', [mnt]);
  if (mnt) fs.rmSync(mnt, { recursive: true, force: true });
});

describe('alerts: real deliveries (issue 14)', () => {
  it('an smtp endpoint sends a real mail: AUTH with its credentials, the envelope, the subject and the message', async () => {
    const r = await s.api('POST', '/notifications', {
      name: 'mail',
      kind: 'smtp',
      smtp: { host: '127.0.0.1', port: smtp.port, secure: false, user: 'alerts', password: 'p4ss-word', from: 'qm@example.test', to: ['ops@example.test', 'oncall@example.test'] },
      events: ['vm.crashed'],
    });
    expect(r.status).toBe(201);
    const sent = await s.api('POST', `/notifications/${r.body.notification.id}/test`);
    expect(sent.status).toBe(200);
    expect(sent.body.delivery).toMatchObject({ ok: true, event: 'test', attempt: 1 });
    expect(smtp.mails).toHaveLength(1);
    const [m] = smtp.mails;
    expect(m.auth).toEqual({ user: 'alerts', pass: 'p4ss-word' });
    expect(m.from).toBe('qm@example.test');
    expect(m.to).toEqual(['ops@example.test', 'oncall@example.test']);
    expect(m.data).toMatch(/^Subject: QEMU Manager: test/m);
    expect(m.data).toContain('A test message for "mail"');
    // a dead SMTP endpoint: the outcome says why, quickly
    const dead = await s.api('POST', '/notifications', {
      name: 'dead-mail', kind: 'smtp', smtp: { host: '127.0.0.1', port: 1, secure: false, from: 'qm@example.test', to: ['ops@example.test'] }, events: ['vm.crashed'],
    });
    const failed = await s.api('POST', `/notifications/${dead.body.notification.id}/test`);
    expect(failed.body.delivery).toMatchObject({ ok: false, error: /ECONNREFUSED|connect/i });
  });

  it.runIf(isRoot)('storage.low goes out once when a storage root drops under 10 % free, and again only after it recovered', async () => {
    const hook = await s.api('POST', '/notifications', { name: 'space', kind: 'webhook', url: `${rx.base}/space`, events: ['storage.low'] });
    expect(hook.status).toBe(201);
    const fill = path.join(mnt, 'fill');
    fs.writeFileSync(fill, Buffer.alloc(960 * 1024)); // of 1 MiB: under 10 % left
    await rx.until(() => rx.on('/space').length >= 1, 20_000);
    expect(rx.on('/space')[0].json).toMatchObject({ event: 'storage.low', message: expect.stringContaining(mnt) });
    await new Promise((r) => setTimeout(r, 1000)); // several checks while still low: no second message
    expect(rx.on('/space')).toHaveLength(1);
    fs.rmSync(fill);
    await new Promise((r) => setTimeout(r, 3000)); // checks (every 200 ms) see it recovered
    fs.writeFileSync(fill, Buffer.alloc(960 * 1024));
    await rx.until(() => rx.on('/space').length >= 2, 20_000);
    expect(rx.on('/space').map((g) => g.json.event)).toEqual(['storage.low', 'storage.low']);
  });
});
