import type { NotificationDelivery, NotificationPayload } from '@qemu-manager/contract';
import nodemailer from 'nodemailer';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { EndpointRecord } from './repo.js';

/** Attempts per message (the first and the retries). */
export const MAX_ATTEMPTS = 5;
/** Each attempt's time bound. */
export const ATTEMPT_TIMEOUT_MS = 10_000;
/** Messages waiting per endpoint; beyond, the oldest is dropped. */
export const QUEUE_LIMIT = 100;
/** The first retry's delay by default: 30 s, 1, 2, 4 min (7.5 min from the first attempt to the last). */
export const DEFAULT_RETRY_BASE_MS = 30_000;
const MESSAGE_MAX = 1000;

/** The delay before attempt `attempt` + 1 (attempt counts from 1); null when none follows. */
export function retryDelayMs(attempt: number, baseMs: number, maxAttempts = MAX_ATTEMPTS): number | null {
  if (attempt >= maxAttempts) return null;
  return baseMs * 2 ** (attempt - 1);
}

/** The outcome of one attempt. */
export interface AttemptOutcome {
  ok: boolean;
  status: number | null;
  error: string | null;
}

/** ASCII only (HTTP header values and a mail subject), no control characters, bounded. */
function headerText(s: string, max = 200): string {
  return s.replace(/[^\x20-\x7e]/g, '?').slice(0, max);
}

const NTFY_TAGS: Record<NotificationPayload['event'], string> = {
  'vm.crashed': 'rotating_light',
  'task.failed': 'x',
  'storage.low': 'floppy_disk,warning',
  'server.started': 'arrow_forward',
  test: 'white_check_mark',
};

export function titleOf(p: NotificationPayload): string {
  return headerText(`QEMU Manager: ${p.event}`);
}

/** The ntfy request: the message as text, Title and Tags headers. */
export function ntfyRequest(p: NotificationPayload): { body: string; headers: Record<string, string> } {
  return {
    body: p.message.slice(0, MESSAGE_MAX),
    headers: { 'content-type': 'text/plain; charset=utf-8', title: titleOf(p), tags: NTFY_TAGS[p.event] },
  };
}

/** The webhook request: the payload as JSON. */
export function webhookRequest(p: NotificationPayload): { body: string; headers: Record<string, string> } {
  return { body: JSON.stringify({ ...p, message: p.message.slice(0, MESSAGE_MAX) }), headers: { 'content-type': 'application/json' } };
}

async function post(url: string, req: { body: string; headers: Record<string, string> }, timeoutMs: number): Promise<AttemptOutcome> {
  const u = new URL(url);
  if (u.protocol !== 'http:' && u.protocol !== 'https:') return { ok: false, status: null, error: 'only http and https URLs are used' };
  try {
    // Redirects are never followed (a 3xx is a failed attempt): the URL is the one the admin gave.
    const res = await fetch(u, { method: 'POST', body: req.body, headers: { 'user-agent': 'qemu-manager', ...req.headers }, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
    await res.body?.cancel().catch(() => undefined); // the answer's body is not read
    const ok = res.status >= 200 && res.status < 300;
    return { ok, status: res.status, error: ok ? null : res.status >= 300 && res.status < 400 ? `redirect (HTTP ${res.status}) not followed` : `HTTP ${res.status}` };
  } catch (err) {
    const e = err as Error & { cause?: unknown };
    const why = e.name === 'TimeoutError' ? `no answer within ${timeoutMs / 1000} s` : e.cause ? errorMessage(e.cause) : errorMessage(e);
    return { ok: false, status: null, error: headerText(why, 300) };
  }
}

async function mail(e: EndpointRecord, p: NotificationPayload, timeoutMs: number): Promise<AttemptOutcome> {
  const s = e.smtp;
  if (!s) return { ok: false, status: null, error: 'no SMTP settings' };
  const transport = nodemailer.createTransport({
    host: s.host,
    port: s.port,
    secure: s.secure,
    ...(s.user ? { auth: { user: s.user, pass: s.password ?? '' } } : {}),
    connectionTimeout: timeoutMs,
    greetingTimeout: timeoutMs,
    socketTimeout: timeoutMs,
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    const sent = transport.sendMail({ from: s.from, to: s.to, subject: titleOf(p), text: `${p.message.slice(0, MESSAGE_MAX)}\n\n${p.at}\n` });
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs / 1000} s`)), timeoutMs);
    });
    await Promise.race([sent, timeout]);
    return { ok: true, status: null, error: null };
  } catch (err) {
    return { ok: false, status: null, error: headerText(errorMessage(err), 300) };
  } finally {
    clearTimeout(timer);
    transport.close();
  }
}

/** One attempt to deliver `p` to endpoint `e`, bounded in time; never throws. */
export async function attempt(e: EndpointRecord, p: NotificationPayload, timeoutMs = ATTEMPT_TIMEOUT_MS): Promise<AttemptOutcome> {
  try {
    if (e.kind === 'smtp') return await mail(e, p, timeoutMs);
    if (!e.url) return { ok: false, status: null, error: 'no URL' };
    return await post(e.url, e.kind === 'ntfy' ? ntfyRequest(p) : webhookRequest(p), timeoutMs);
  } catch (err) {
    return { ok: false, status: null, error: headerText(errorMessage(err), 300) };
  }
}

interface Pending {
  payload: NotificationPayload;
  attempt: number;
}

export interface QueueDeps {
  endpoint: () => EndpointRecord | null;
  record: (d: NotificationDelivery) => void;
  log: Logger;
  retryBaseMs: number;
  timeoutMs?: number;
  send?: typeof attempt;
}

/**
 * One endpoint's queue: one message in flight at a time, in order; a failed attempt is retried
 * after retryDelayMs, up to MAX_ATTEMPTS; at most QUEUE_LIMIT waiting (the oldest dropped). Nothing
 * here is awaited by a request.
 */
export class EndpointQueue {
  private readonly waiting: Pending[] = [];
  private busy = false;
  private timer: NodeJS.Timeout | null = null;
  private closed = false;

  constructor(private readonly deps: QueueDeps) {}

  get length(): number {
    return this.waiting.length;
  }

  push(payload: NotificationPayload): void {
    if (this.closed) return;
    this.waiting.push({ payload, attempt: 0 });
    while (this.waiting.length > QUEUE_LIMIT) {
      const dropped = this.waiting.shift()!;
      this.deps.log.warn({ event: dropped.payload.event, at: dropped.payload.at }, 'notification queue full: the oldest message was dropped');
    }
    this.pump();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.waiting.length = 0;
  }

  private pump(): void {
    if (this.busy || this.timer || this.closed) return;
    const head = this.waiting[0];
    if (!head) return;
    this.busy = true;
    void this.run(head).finally(() => {
      this.busy = false;
      this.pump();
    });
  }

  private async run(head: Pending): Promise<void> {
    const e = this.deps.endpoint();
    if (!e) return this.close();
    head.attempt++;
    const out = await (this.deps.send ?? attempt)(e, head.payload, this.deps.timeoutMs ?? ATTEMPT_TIMEOUT_MS);
    if (this.closed) return;
    const delay = out.ok ? null : retryDelayMs(head.attempt, this.deps.retryBaseMs);
    this.deps.record({ at: new Date().toISOString(), event: head.payload.event, attempt: head.attempt, ok: out.ok, status: out.status, error: out.error, final: delay === null });
    if (!out.ok) this.deps.log.warn({ endpoint: e.id, event: head.payload.event, attempt: head.attempt, error: out.error, retryInMs: delay }, 'a notification was not delivered');
    if (delay === null) {
      if (this.waiting[0] === head) this.waiting.shift();
      return;
    }
    this.timer = setTimeout(() => {
      this.timer = null;
      this.pump();
    }, delay);
    this.timer.unref();
  }
}
