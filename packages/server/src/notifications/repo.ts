import type { Notification, NotificationDelivery, NotificationEvent, NotificationKind, SmtpSettings } from '@qemu-manager/contract';
import type { Db } from '../store/sqlite.js';

/** The stored SMTP settings: the password is kept (to send), never returned. */
export interface SmtpStored {
  host: string;
  port: number;
  secure: boolean;
  user?: string;
  password?: string;
  from: string;
  to: string[];
}

export interface EndpointRecord {
  id: string;
  name: string;
  kind: NotificationKind;
  url: string | null;
  smtp: SmtpStored | null;
  events: NotificationEvent[];
  createdAt: string;
}

interface Row {
  id: string;
  name: string;
  kind: NotificationKind;
  url: string | null;
  smtp: string | null;
  events: string;
  created_at: string;
}

interface DeliveryRow {
  at: string;
  event: NotificationDelivery['event'];
  attempt: number;
  ok: number;
  status: number | null;
  error: string | null;
  final: number;
}

/** How many attempts are kept per endpoint. */
export const DELIVERIES_KEPT = 50;

const fromRow = (r: Row): EndpointRecord => ({
  id: r.id,
  name: r.name,
  kind: r.kind,
  url: r.url,
  smtp: r.smtp ? (JSON.parse(r.smtp) as SmtpStored) : null,
  events: JSON.parse(r.events) as NotificationEvent[],
  createdAt: r.created_at,
});

/** What the API shows: the SMTP password only as `passwordSet`. */
export function toNotification(e: EndpointRecord): Notification {
  let smtp: SmtpSettings | null = null;
  if (e.smtp) {
    const { password, user, ...rest } = e.smtp;
    smtp = { ...rest, ...(user !== undefined ? { user } : {}), passwordSet: password !== undefined };
  }
  return { id: e.id, name: e.name, kind: e.kind, url: e.url, smtp, events: e.events, createdAt: e.createdAt };
}

export class NotificationRepo {
  constructor(private readonly db: Db) {}

  list(): EndpointRecord[] {
    return (this.db.prepare('SELECT * FROM notifications ORDER BY created_at, id').all() as Row[]).map(fromRow);
  }

  get(id: string): EndpointRecord | null {
    const r = this.db.prepare('SELECT * FROM notifications WHERE id = ?').get(id) as Row | undefined;
    return r ? fromRow(r) : null;
  }

  insert(e: EndpointRecord): void {
    this.db
      .prepare('INSERT INTO notifications (id, name, kind, url, smtp, events, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(e.id, e.name, e.kind, e.url, e.smtp ? JSON.stringify(e.smtp) : null, JSON.stringify(e.events), e.createdAt);
  }

  delete(id: string): boolean {
    return this.db.prepare('DELETE FROM notifications WHERE id = ?').run(id).changes > 0;
  }

  /** Records one attempt (of an endpoint that still exists) and prunes to the newest DELIVERIES_KEPT. */
  recordDelivery(id: string, d: NotificationDelivery): void {
    this.db.transaction(() => {
      const r = this.db
        .prepare(
          'INSERT INTO notification_deliveries (notification_id, at, event, attempt, ok, status, error, final) SELECT ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS (SELECT 1 FROM notifications WHERE id = ?)',
        )
        .run(id, d.at, d.event, d.attempt, d.ok ? 1 : 0, d.status, d.error, d.final ? 1 : 0, id);
      if (r.changes === 0) return;
      this.db
        .prepare(
          'DELETE FROM notification_deliveries WHERE notification_id = ? AND seq <= (SELECT seq FROM notification_deliveries WHERE notification_id = ? ORDER BY seq DESC LIMIT 1 OFFSET ?)',
        )
        .run(id, id, DELIVERIES_KEPT);
    })();
  }

  /** The newest first. */
  deliveries(id: string, limit = DELIVERIES_KEPT): NotificationDelivery[] {
    const rows = this.db
      .prepare('SELECT at, event, attempt, ok, status, error, final FROM notification_deliveries WHERE notification_id = ? ORDER BY seq DESC LIMIT ?')
      .all(id, limit) as DeliveryRow[];
    return rows.map((r) => ({ at: r.at, event: r.event, attempt: r.attempt, ok: r.ok === 1, status: r.status, error: r.error, final: r.final === 1 }));
  }
}
