import { HostMetrics, MetricsQuery, MetricsSummary, ScreenshotQuery, VmIdParams, VmMetrics } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { MetricsService } from '../../metrics/service.js';
import { PROMETHEUS_CONTENT_TYPE, prometheusText } from '../../metrics/prometheus.js';
import { errorResponses as errors } from '../error-table.js';

/** Metrics (issue 14): history, the host, the Prometheus exposition and screenshots (all read scope). */
export function metricsRoutes(metrics: MetricsService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const read = { scope: 'read' } as const;
    const tags = ['metrics'];
    app.get(
      '/vms/:vm_id/metrics',
      { config: read, schema: { tags, params: VmIdParams, querystring: MetricsQuery, response: { 200: VmMetrics, ...errors } } },
      async (req) => metrics.vmMetrics(req.params.vm_id, req.query.range ?? '1h'),
    );
    app.get('/metrics/summary', { config: read, schema: { tags, response: { 200: MetricsSummary, ...errors } } }, async () => metrics.summary());
    app.get('/host/metrics', { config: read, schema: { tags, response: { 200: HostMetrics, ...errors } } }, async () => metrics.host());
    app.get(
      '/metrics',
      { config: read, schema: { tags, response: { 200: Type.String({ description: 'Prometheus text exposition format 0.0.4' }), ...errors } } },
      async (_req, reply) => reply.type(PROMETHEUS_CONTENT_TYPE).send(prometheusText(metrics.snapshot())),
    );
    app.get(
      '/vms/:vm_id/screenshot',
      {
        config: read,
        schema: { tags, params: VmIdParams, querystring: ScreenshotQuery, response: { 200: Type.String({ description: 'image/png' }), ...errors } },
      },
      async (req, reply) => {
        const width = req.query.width === undefined ? null : Number(req.query.width);
        const png = await metrics.screenshot(req.params.vm_id, width);
        return reply.type('image/png').header('cache-control', 'private, max-age=2').send(png as never);
      },
    );
  };
}
