import {
  CreateNotificationBody,
  MessageBody,
  NotificationDeliveriesEnvelope,
  NotificationEnvelope,
  NotificationListEnvelope,
  NotificationParams,
  NotificationTestResult,
} from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { Type } from '@sinclair/typebox';
import type { NotificationService } from '../../notifications/service.js';
import { errorResponses as errors } from '../error-table.js';

const CREATED = 201;

/** Alerts (issue 14): notification endpoints. Admin scope throughout (they hold URLs and secrets). */
export function notificationRoutes(n: NotificationService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const admin = { scope: 'admin' } as const;
    const tags = ['notifications'];
    app.get('/notifications', { config: admin, schema: { tags, response: { 200: NotificationListEnvelope, ...errors } } }, async () => ({ notifications: n.list() }));
    app.post('/notifications', { config: admin, schema: { tags, body: CreateNotificationBody, response: { 201: NotificationEnvelope, ...errors } } }, async (req, reply) => {
      const notification = n.create(req.body);
      reply.status(CREATED);
      return { notification };
    });
    app.delete('/notifications/:id', { config: admin, schema: { tags, params: NotificationParams, response: { 200: MessageBody, ...errors } } }, async (req) => {
      n.delete(req.params.id);
      return { message: 'Notification endpoint removed' };
    });
    app.post('/notifications/:id/test', { config: admin, schema: { tags, params: NotificationParams, response: { 200: NotificationTestResult, ...errors } } }, async (req) => ({
      delivery: await n.test(req.params.id),
    }));
    app.get(
      '/notifications/:id/deliveries',
      {
        config: admin,
        schema: { tags, params: NotificationParams, querystring: Type.Object({ limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })) }, { additionalProperties: false }), response: { 200: NotificationDeliveriesEnvelope, ...errors } },
      },
      async (req) => ({ deliveries: n.deliveries(req.params.id, req.query.limit) }),
    );
  };
}
