import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';

/**
 * Alerts (extension, issue 14): endpoints the server notifies of events. Each endpoint has a
 * bounded delivery queue; a delivery is retried with exponential backoff and every attempt's
 * outcome is kept (the last ones per endpoint). Admin scope throughout: endpoints hold URLs and
 * secrets. The SMTP password is write-only (never returned).
 */
export const NotificationEvents = ['vm.crashed', 'task.failed', 'storage.low', 'server.started'] as const;
export type NotificationEvent = (typeof NotificationEvents)[number];
export const NotificationEvent = Type.Union(NotificationEvents.map((e) => Type.Literal(e)));

export const NotificationKind = Type.Union([Type.Literal('webhook'), Type.Literal('ntfy'), Type.Literal('smtp')]);
export type NotificationKind = Static<typeof NotificationKind>;

const Email = Type.String({ minLength: 3, maxLength: 254, pattern: '^[^\\s@<>,;]+@[^\\s@<>,;]+$' });

export const SmtpSettingsBody = Type.Object(
  {
    host: Type.String({ minLength: 1, maxLength: 253, pattern: '^[A-Za-z0-9.:\\[\\]-]+$' }),
    port: Type.Integer({ minimum: 1, maximum: 65535 }),
    secure: Type.Boolean({ description: 'TLS from the first byte (port 465); false: STARTTLS when offered' }),
    user: Type.Optional(Type.String({ minLength: 1, maxLength: 256 })),
    password: Type.Optional(Type.String({ minLength: 1, maxLength: 256, description: 'write-only' })),
    from: Email,
    to: Type.Array(Email, { minItems: 1, maxItems: 20 }),
  },
  { additionalProperties: false },
);
export type SmtpSettingsBody = Static<typeof SmtpSettingsBody>;

export const SmtpSettings = Type.Object(
  {
    host: Type.String(),
    port: Type.Integer(),
    secure: Type.Boolean(),
    user: Type.Optional(Type.String()),
    passwordSet: Type.Boolean({ description: 'a password is stored (it is never returned)' }),
    from: Type.String(),
    to: Type.Array(Type.String()),
  },
  { additionalProperties: false },
);
export type SmtpSettings = Static<typeof SmtpSettings>;

/** POST /api/notifications. `url` (http or https) for webhook and ntfy (the topic URL); `smtp` for smtp. */
export const CreateNotificationBody = Type.Object(
  {
    name: Type.String({ minLength: 1, maxLength: 100 }),
    kind: NotificationKind,
    url: Type.Optional(Type.String({ minLength: 1, maxLength: 2048 })),
    smtp: Type.Optional(SmtpSettingsBody),
    events: Type.Array(NotificationEvent, { minItems: 1, maxItems: NotificationEvents.length, uniqueItems: true }),
  },
  { additionalProperties: false },
);
export type CreateNotificationBody = Static<typeof CreateNotificationBody>;

export const Notification = Type.Object(
  {
    id: Id,
    name: Type.String(),
    kind: NotificationKind,
    url: Type.Union([Type.String(), Type.Null()]),
    smtp: Type.Union([SmtpSettings, Type.Null()]),
    events: Type.Array(NotificationEvent),
    createdAt: Timestamp,
  },
  { additionalProperties: false, $id: 'Notification' },
);
export type Notification = Static<typeof Notification>;

export const NotificationEnvelope = Type.Object({ notification: Notification }, { additionalProperties: false });
export type NotificationEnvelope = Static<typeof NotificationEnvelope>;
export const NotificationListEnvelope = Type.Object({ notifications: Type.Array(Notification) }, { additionalProperties: false });
export type NotificationListEnvelope = Static<typeof NotificationListEnvelope>;

export const NotificationParams = Type.Object({ id: PathId }, { additionalProperties: false });
export type NotificationParams = Static<typeof NotificationParams>;

/** One attempt to deliver one message. */
export const NotificationDelivery = Type.Object(
  {
    at: Timestamp,
    event: Type.Union([NotificationEvent, Type.Literal('test')]),
    attempt: Type.Integer({ minimum: 1 }),
    ok: Type.Boolean(),
    status: Type.Union([Type.Integer(), Type.Null()], { description: 'HTTP status of the answer (webhook, ntfy), else null' }),
    error: Type.Union([Type.String(), Type.Null()]),
    final: Type.Boolean({ description: 'no further attempt follows (delivered, or given up)' }),
  },
  { additionalProperties: false },
);
export type NotificationDelivery = Static<typeof NotificationDelivery>;

export const NotificationDeliveriesEnvelope = Type.Object({ deliveries: Type.Array(NotificationDelivery) }, { additionalProperties: false });
export type NotificationDeliveriesEnvelope = Static<typeof NotificationDeliveriesEnvelope>;

/** POST /api/notifications/{id}/test: one attempt now, no retry; its outcome. */
export const NotificationTestResult = Type.Object({ delivery: NotificationDelivery }, { additionalProperties: false });
export type NotificationTestResult = Static<typeof NotificationTestResult>;

/** The webhook's JSON body. */
export const NotificationPayload = Type.Object(
  {
    event: Type.Union([NotificationEvent, Type.Literal('test')]),
    vm: Type.Optional(Type.Object({ id: Type.String(), name: Type.String() })),
    task: Type.Optional(Type.Object({ id: Type.String(), kind: Type.String(), error: Type.Union([Type.String(), Type.Null()]) })),
    storage: Type.Optional(Type.Object({ kind: Type.String(), name: Type.String(), path: Type.String(), freeBytes: Type.Integer(), totalBytes: Type.Integer() })),
    message: Type.String(),
    at: Timestamp,
  },
  { additionalProperties: false },
);
export type NotificationPayload = Static<typeof NotificationPayload>;
