import { Type, type Static } from '@sinclair/typebox';
import { Id, PathId, Timestamp } from './common.js';

export const LoginBody = Type.Object({ password: Type.String({ minLength: 1, maxLength: 1024 }) }, { additionalProperties: false });
export type LoginBody = Static<typeof LoginBody>;

export const AuthStatus = Type.Object(
  {
    authRequired: Type.Boolean({ description: 'Whether API calls need a session or token' }),
    authenticated: Type.Boolean(),
    actor: Type.Union([Type.String(), Type.Null()], { description: 'session:admin, token:<name> or local' }),
    scope: Type.Union([Type.Literal('read'), Type.Literal('admin'), Type.Null()]),
  },
  { additionalProperties: false },
);
export type AuthStatus = Static<typeof AuthStatus>;

export const TokenScope = Type.Union([Type.Literal('read'), Type.Literal('admin')]);
export type TokenScope = Static<typeof TokenScope>;

export const TOKEN_NAME_PATTERN = '^[A-Za-z0-9][A-Za-z0-9 ._-]{0,62}$';

export const CreateTokenBody = Type.Object(
  {
    name: Type.String({ pattern: TOKEN_NAME_PATTERN, maxLength: 63 }),
    scope: TokenScope,
    expiresIn: Type.Optional(Type.Integer({ minimum: 60, maximum: 10 * 365 * 86400, description: 'Seconds until it expires' })),
  },
  { additionalProperties: false },
);
export type CreateTokenBody = Static<typeof CreateTokenBody>;

export const ApiToken = Type.Object(
  {
    id: Id,
    name: Type.String(),
    scope: TokenScope,
    createdAt: Timestamp,
    expiresAt: Type.Union([Timestamp, Type.Null()]),
    lastUsedAt: Type.Union([Timestamp, Type.Null()]),
    revokedAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type ApiToken = Static<typeof ApiToken>;
export const TokenListEnvelope = Type.Object({ tokens: Type.Array(ApiToken) }, { additionalProperties: false });
export type TokenListEnvelope = Static<typeof TokenListEnvelope>;

/** The secret is shown once, in this answer only. */
export const CreatedToken = Type.Object(
  {
    token: Type.String({ description: 'Use as `Authorization: Bearer <token>`; shown once' }),
    id: Id,
    name: Type.String(),
    scope: TokenScope,
    createdAt: Timestamp,
    expiresAt: Type.Union([Timestamp, Type.Null()]),
  },
  { additionalProperties: false },
);
export type CreatedToken = Static<typeof CreatedToken>;

export const TokenIdParams = Type.Object({ id: PathId }, { additionalProperties: false });
export type TokenIdParams = Static<typeof TokenIdParams>;

export const ConsoleTicket = Type.Object(
  {
    ticket: Type.String({ description: 'Pass as /api/vnc/{vm_id}?ticket=…; one connection, ~30 s' }),
    expiresAt: Timestamp,
  },
  { additionalProperties: false },
);
export type ConsoleTicket = Static<typeof ConsoleTicket>;

export const AuditEntry = Type.Object(
  {
    id: Type.Integer(),
    at: Timestamp,
    actor: Type.String(),
    ip: Type.Union([Type.String(), Type.Null()]),
    action: Type.String(),
    target: Type.Union([Type.String(), Type.Null()]),
    status: Type.Integer({ description: 'HTTP status of the result' }),
  },
  { additionalProperties: false },
);
export type AuditEntry = Static<typeof AuditEntry>;

export const AuditQuery = Type.Object(
  {
    limit: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'At most 1000 (default 100)' })),
    before: Type.Optional(Type.String({ pattern: '^[0-9]{1,12}$', description: 'Entries with a smaller id' })),
  },
  { additionalProperties: false },
);
export const AuditList = Type.Object({ entries: Type.Array(AuditEntry) }, { additionalProperties: false });
export type AuditList = Static<typeof AuditList>;
export type AuditQuery = Static<typeof AuditQuery>;
