import type {
  CreateNotificationBody,
  MessageBody,
  Notification,
  NotificationDeliveriesEnvelope,
  NotificationDelivery,
  NotificationEnvelope,
  NotificationEvent,
  NotificationKind,
  NotificationListEnvelope,
  NotificationTestResult,
} from '@qemu-manager/contract';
import { request } from '../../api/client';

const enc = encodeURIComponent;

/** Alerts (issue 14): admin only. */
export const notificationsApi = {
  list: async (signal?: AbortSignal): Promise<Notification[]> => (await request<NotificationListEnvelope>('GET', '/notifications', undefined, { signal })).notifications,
  create: async (body: CreateNotificationBody): Promise<Notification> => (await request<NotificationEnvelope>('POST', '/notifications', body)).notification,
  remove: (id: string): Promise<MessageBody> => request<MessageBody>('DELETE', `/notifications/${enc(id)}`),
  test: async (id: string): Promise<NotificationDelivery> => (await request<NotificationTestResult>('POST', `/notifications/${enc(id)}/test`)).delivery,
  deliveries: async (id: string, signal?: AbortSignal): Promise<NotificationDelivery[]> =>
    (await request<NotificationDeliveriesEnvelope>('GET', `/notifications/${enc(id)}/deliveries?limit=10`, undefined, { signal })).deliveries,
};

export interface NotificationForm {
  name: string;
  kind: NotificationKind;
  url: string;
  events: NotificationEvent[];
  smtp: { host: string; port: string; secure: boolean; user: string; password: string; from: string; to: string };
}

/** The POST body of the form: a URL for webhook and ntfy, SMTP settings for smtp (empty optional fields left out). */
export function createNotificationBody(f: NotificationForm): CreateNotificationBody {
  const base = { name: f.name.trim(), kind: f.kind, events: f.events };
  if (f.kind !== 'smtp') return { ...base, url: f.url.trim() };
  const s = f.smtp;
  return {
    ...base,
    smtp: {
      host: s.host.trim(),
      port: Number(s.port),
      secure: s.secure,
      ...(s.user.trim() ? { user: s.user.trim() } : {}),
      ...(s.password ? { password: s.password } : {}),
      from: s.from.trim(),
      to: s.to.split(',').map((x) => x.trim()).filter(Boolean),
    },
  };
}
