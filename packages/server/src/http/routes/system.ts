import { Health, type HostTotals } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';

interface HealthSource {
  version: string;
  qemuVersion: string | null;
  accel: 'kvm' | 'tcg';
  accelReason: string;
  limits: { cpus: number; memoryMiB: number };
  /** Host-wide totals, computed on each call. */
  totals: () => HostTotals;
  /** Computed on each call: rules can fail or be put back while the server runs. */
  guestIsolation: () => { enforced: boolean; reason: string };
}

export function systemRoutes(h: HealthSource): FastifyPluginAsyncTypebox {
  return async (app) => {
    // Public, so monitors, container health checks and systemd can ask without credentials; the
    // details (versions, accelerator, host, limits) only with credentials when authentication is on.
    app.get('/health', { config: { scope: 'public' }, schema: { tags: ['system'], response: { 200: Health } } }, async (req) => {
      const timestamp = new Date().toISOString();
      if (!req.principal) return { status: 'ok' as const, timestamp };
      return details(timestamp);
    });
    const details = (timestamp: string) => ({
      status: 'ok' as const,
      timestamp,
      version: h.version,
      qemu: { version: h.qemuVersion, accel: h.accel, accelReason: h.accelReason },
      host: h.limits,
      limits: h.totals(),
      guestIsolation: h.guestIsolation(),
    });
    app.get('/openapi.json', { config: { scope: 'read' }, schema: { hide: true } }, async () => app.swagger());
  };
}
