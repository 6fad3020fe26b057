/**
 * Metrics (issue 14): the guest's own view of its memory, from the virtio balloon's statistics
 * (the guest's driver reports them every polling interval). The guest writes these numbers: they
 * are checked to be sane integers, and the answer is null unless the guest reported both totals.
 */
export interface GuestMemory {
  totalBytes: number;
  availableBytes: number;
}

/** The balloon device the argv gives every VM. */
export const BALLOON_ID = 'balloon0';
/** Seconds between two reports of the guest (the sampler asks every 5 s). */
export const BALLOON_POLL_SECONDS = 5;

function bytes(v: unknown): number | null {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : null;
}

/** `qom-get guest-stats` → the guest's memory, or null (no driver, no report yet, or nonsense). */
export function parseBalloonStats(answer: unknown, memoryBytes: number): GuestMemory | null {
  if (typeof answer !== 'object' || answer === null) return null;
  const a = answer as { stats?: unknown; 'last-update'?: unknown };
  if (typeof a['last-update'] !== 'number' || a['last-update'] <= 0) return null;
  if (typeof a.stats !== 'object' || a.stats === null) return null;
  const s = a.stats as Record<string, unknown>;
  const total = bytes(s['stat-total-memory']);
  // available: what the guest could use without swapping (newer kernels); else the free memory
  const available = bytes(s['stat-available-memory']) ?? bytes(s['stat-free-memory']);
  if (total === null || available === null || total === 0) return null;
  // the guest cannot have more memory than the VM was given, nor more available than in total
  if (total > memoryBytes || available > total) return null;
  return { totalBytes: total, availableBytes: available };
}
