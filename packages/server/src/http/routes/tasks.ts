import { TaskEnvelope, TaskIdParams, TaskListEnvelope, TaskListQuery } from '@qemu-manager/contract';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import type { TaskService } from '../../tasks/service.js';
import { errorResponses as errors } from '../error-table.js';

/** Long operations: list (newest first, by VM or disk), one, cancel. */
export function taskRoutes(tasks: TaskService): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['tasks'];
    app.get('/tasks', { config: { scope: 'read' }, schema: { tags, querystring: TaskListQuery, response: { 200: TaskListEnvelope, ...errors } } }, async (req) => ({
      tasks: tasks.list(req.query),
    }));
    app.get('/tasks/:task_id', { config: { scope: 'read' }, schema: { tags, params: TaskIdParams, response: { 200: TaskEnvelope, ...errors } } }, async (req) => ({
      task: tasks.get(req.params.task_id),
    }));
    app.delete('/tasks/:task_id', { config: { scope: 'admin' }, schema: { tags, params: TaskIdParams, response: { 200: TaskEnvelope, ...errors } } }, async (req) => ({
      task: await tasks.cancel(req.params.task_id),
    }));
  };
}
