import { Type, type Static } from '@sinclair/typebox';

// serial console (issue 14)

/** `POST /api/vms/{vm_id}/console` body (optional): which console the one-time ticket opens. */
export const ConsoleKind = Type.Union([Type.Literal('vnc'), Type.Literal('serial')], {
  description: 'vnc (default): WS /api/vnc/{vm_id}; serial: WS /api/vms/{vm_id}/serial',
});
export type ConsoleKind = Static<typeof ConsoleKind>;

export const ConsoleTicketRequest = Type.Object({ kind: Type.Optional(ConsoleKind) }, { additionalProperties: false });
export type ConsoleTicketRequest = Static<typeof ConsoleTicketRequest>;

/** The most lines `GET /api/vms/{vm_id}/serial/log` gives. */
export const SERIAL_LOG_MAX_LINES = 10000;

export const SerialLogQuery = Type.Object(
  {
    tail: Type.Optional(
      Type.String({ pattern: '^(?:[1-9][0-9]{0,3}|10000)$', description: 'the last N lines (1-10000, default 100)' }),
    ),
  },
  { additionalProperties: false },
);
export type SerialLogQuery = Static<typeof SerialLogQuery>;
