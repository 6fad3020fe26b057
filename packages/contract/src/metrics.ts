import { Type, type Static } from '@sinclair/typebox';

/** Metrics (issue 14): how far back `GET /api/vms/{vm_id}/metrics` looks. */
export const MetricsRange = Type.Union([Type.Literal('15m'), Type.Literal('1h'), Type.Literal('24h')]);
export type MetricsRange = Static<typeof MetricsRange>;

export const MetricsQuery = Type.Object({ range: Type.Optional(MetricsRange) }, { additionalProperties: false });
export type MetricsQuery = Static<typeof MetricsQuery>;

const Num = Type.Union([Type.Number(), Type.Null()]);
const Column = Type.Array(Num);

/**
 * One VM's history, column by column (uPlot's shape): `t[i]` is the start of the i-th interval in
 * Unix seconds and every other column holds that interval's average (null: not measured then).
 */
export const MetricsSeries = Type.Object(
  {
    t: Type.Array(Type.Integer()),
    cpuPercent: Column,
    rssBytes: Column,
    diskReadBps: Column,
    diskWriteBps: Column,
    diskReadOps: Column,
    diskWriteOps: Column,
    netRxBps: Column,
    netTxBps: Column,
  },
  { additionalProperties: false },
);
export type MetricsSeries = Static<typeof MetricsSeries>;

/** The last sample's counters (totals since the VM's QEMU started) and gauges. */
export const MetricsCurrent = Type.Object(
  {
    at: Type.String({ format: 'date-time' }),
    cpuPercent: Num,
    cpuSeconds: Num,
    rssBytes: Num,
    diskReadBytes: Type.Integer(),
    diskWriteBytes: Type.Integer(),
    diskReadOps: Type.Integer(),
    diskWriteOps: Type.Integer(),
    netRxBytes: Type.Union([Type.Integer(), Type.Null()]),
    netTxBytes: Type.Union([Type.Integer(), Type.Null()]),
    /** The guest's own view (the balloon driver's report), null when the guest does not report it. */
    guestMemoryTotalBytes: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    guestMemoryAvailableBytes: Type.Optional(Type.Union([Type.Integer(), Type.Null()])),
    /** Per NIC whose backend counts (tap NICs of managed and bridge networks; user-mode NICs do not): bytes the guest received and sent. */
    nics: Type.Optional(
      Type.Array(Type.Object({ id: Type.String({ description: 'nic<slot>' }), rxBytes: Type.Integer(), txBytes: Type.Integer() }, { additionalProperties: false })),
    ),
  },
  { additionalProperties: false },
);
export type MetricsCurrent = Static<typeof MetricsCurrent>;

/** `GET /api/vms/{vm_id}/metrics` (extension, issue 14). */
export const VmMetrics = Type.Object(
  {
    vmId: Type.String(),
    range: MetricsRange,
    /** Seconds between two points of the series. */
    stepSeconds: Type.Integer({ minimum: 1 }),
    series: MetricsSeries,
    /** Null while the VM is not running (or not sampled yet). */
    current: Type.Union([MetricsCurrent, Type.Null()]),
  },
  { additionalProperties: false },
);
export type VmMetrics = Static<typeof VmMetrics>;

/** `GET /api/metrics/summary` (extension, issue 14): the VM list's CPU sparklines, one request for all VMs. */
export const MetricsSummary = Type.Object(
  {
    /** Seconds between two points of every `cpu` array (the last 15 minutes). */
    stepSeconds: Type.Integer({ minimum: 1 }),
    vms: Type.Array(
      Type.Object(
        { id: Type.String(), running: Type.Boolean(), cpuPercent: Num, cpu: Column },
        { additionalProperties: false },
      ),
    ),
  },
  { additionalProperties: false },
);
export type MetricsSummary = Static<typeof MetricsSummary>;

export const HostStorage = Type.Object(
  {
    kind: Type.Union([Type.Literal('storage-root'), Type.Literal('backup-target')]),
    /** The backup target's name; the root's path for a storage root. */
    name: Type.String(),
    path: Type.String(),
    freeBytes: Type.Union([Type.Integer(), Type.Null()]),
    totalBytes: Type.Union([Type.Integer(), Type.Null()]),
  },
  { additionalProperties: false },
);
export type HostStorage = Static<typeof HostStorage>;

/** `GET /api/host/metrics` (extension, issue 14). */
export const HostMetrics = Type.Object(
  {
    timestamp: Type.String({ format: 'date-time' }),
    cpu: Type.Object(
      {
        cores: Type.Integer({ minimum: 1 }),
        /** Busy share of all cores over the last sampling interval, 0–100 (null before the second sample). */
        percent: Num,
        loadAverage: Type.Array(Type.Number()),
      },
      { additionalProperties: false },
    ),
    memory: Type.Object({ totalBytes: Type.Integer(), availableBytes: Type.Integer() }, { additionalProperties: false }),
    storage: Type.Array(HostStorage),
  },
  { additionalProperties: false },
);
export type HostMetrics = Static<typeof HostMetrics>;

/** `GET /api/vms/{vm_id}/screenshot?width=` (extension, issue 14). */
export const ScreenshotQuery = Type.Object(
  {
    width: Type.Optional(Type.String({ pattern: '^[0-9]{1,4}$', description: 'Scale down to this width in pixels, 16 to 1920 (never up); default: the native size' })),
    t: Type.Optional(Type.String({ pattern: '^[0-9]{1,16}$', description: 'Ignored: lets a client ask again past its own caches' })),
  },
  { additionalProperties: false },
);
export type ScreenshotQuery = Static<typeof ScreenshotQuery>;
