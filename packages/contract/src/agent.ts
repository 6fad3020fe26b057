// The guest agent (issue 14): what GET /api/vms/{vm_id}/agent answers.
import { Type, type Static } from '@sinclair/typebox';

export const AgentInterface = Type.Object(
  {
    name: Type.String(),
    mac: Type.Union([Type.String(), Type.Null()]),
    ips: Type.Array(Type.String({ description: 'address/prefix' })),
  },
  { additionalProperties: false },
);

export const AgentFs = Type.Object(
  {
    mountpoint: Type.String(),
    type: Type.String(),
    name: Type.String(),
    totalBytes: Type.Union([Type.Integer(), Type.Null()]),
    usedBytes: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: false },
);

export const AgentState = Type.Object(
  {
    connected: Type.Boolean({ description: 'The guest agent answered its last check' }),
    version: Type.Optional(Type.String()),
    os: Type.Optional(Type.Object({ name: Type.String(), version: Type.String(), kernel: Type.String() }, { additionalProperties: false })),
    hostname: Type.Optional(Type.String()),
    interfaces: Type.Optional(Type.Array(AgentInterface)),
    fsinfo: Type.Optional(Type.Array(AgentFs)),
    lastSeen: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'When the agent last answered (null: not since the VM started)' }),
  },
  { additionalProperties: false, $id: 'AgentState' },
);
export type AgentState = Static<typeof AgentState>;
