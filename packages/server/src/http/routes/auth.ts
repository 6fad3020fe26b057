import {
  AuthStatus,
  ConsoleTicket,
  ConsoleTicketRequest, // serial console (issue 14)
  CreateTokenBody,
  CreatedToken,
  LoginBody,
  MessageBody,
  TokenIdParams,
  TokenListEnvelope,
  VmIdParams,
} from '@qemu-manager/contract';
import { CREATED, errorResponses as errors } from '../error-table.js';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppError, isAppError } from '../../lib/errors.js';
import { SESSION_COOKIE, parseCookies } from '../../lib/request.js';
import type { AuthService } from '../../auth/service.js';


interface AuthRouteDeps {
  auth: AuthService;
  /** Throws 404/409 unless the VM exists and its console can be opened. */
  checkConsole: (vmId: string) => void;
  /** Serial console (issue 14): the same for its serial console; absent: only VNC tickets. */
  checkSerial?: (vmId: string) => void;
  secureCookies: (req: { headers: Record<string, unknown>; protocol: string }) => boolean;
}

export function authRoutes({ auth, checkConsole, checkSerial, secureCookies }: AuthRouteDeps): FastifyPluginAsyncTypebox {
  return async (app) => {
    const tags = ['auth'];

    app.get('/auth/status', { config: { scope: 'public' }, schema: { tags, response: { 200: AuthStatus } } }, async (req) => ({
      authRequired: auth.required,
      authenticated: req.principal !== null,
      actor: req.principal?.actor ?? null,
      scope: req.principal?.scope ?? null,
    }));

    app.post('/auth/login', { config: { scope: 'public' }, schema: { tags, body: LoginBody, response: { 200: MessageBody, ...errors } } }, async (req, reply) => {
      try {
        const { session, expiresAt } = await auth.login(req.body.password, req.ip);
        req.principal = auth.sessionPrincipal(session); // the audit log names who logged in
        const attrs = ['Path=/', 'HttpOnly', 'SameSite=Strict', `Expires=${expiresAt.toUTCString()}`];
        if (secureCookies(req)) attrs.push('Secure');
        reply.header('set-cookie', `${SESSION_COOKIE}=${session}; ${attrs.join('; ')}`);
        return { message: 'Logged in' };
      } catch (err) {
        if (isAppError(err) && 'retryAfter' in err) reply.header('retry-after', String(err.retryAfter));
        throw err;
      }
    });

    app.post('/auth/logout', { config: { scope: 'public' }, schema: { tags, response: { 200: MessageBody } } }, async (req, reply) => {
      auth.logout(parseCookies(req.headers.cookie)[SESSION_COOKIE]);
      reply.header('set-cookie', `${SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0`);
      return { message: 'Logged out' };
    });

    app.post('/tokens', { config: { scope: 'admin' }, schema: { tags, body: CreateTokenBody, response: { 201: CreatedToken, ...errors } } }, async (req, reply) => {
      const created = auth.createToken(req.body);
      req.auditTarget = created.id;
      reply.status(CREATED);
      return created;
    });

    app.get('/tokens', { config: { scope: 'admin' }, schema: { tags, response: { 200: TokenListEnvelope, ...errors } } }, async () => ({
      tokens: auth.listTokens(),
    }));

    app.delete('/tokens/:id', { config: { scope: 'admin' }, schema: { tags, params: TokenIdParams, response: { 200: MessageBody, ...errors } } }, async (req) => {
      auth.revokeToken(req.params.id);
      return { message: 'Token revoked' };
    });

    app.post(
      '/vms/:vm_id/console',
      {
        config: { scope: 'admin' },
        // serial console (issue 14): an optional body { kind: "vnc" | "serial" }; none is {} (VNC)
        preValidation: async (req) => {
          if (req.body === undefined || req.body === null) req.body = {};
        },
        schema: { tags: ['vms'], params: VmIdParams, body: ConsoleTicketRequest, response: { 200: ConsoleTicket, ...errors } },
      },
      async (req) => {
        const kind = req.body?.kind ?? 'vnc';
        if (kind === 'serial') {
          if (!checkSerial) throw new AppError('NOT_FOUND', 'This server has no serial console');
          checkSerial(req.params.vm_id);
        } else checkConsole(req.params.vm_id);
        return auth.issueTicket(req.params.vm_id, kind);
      },
    );
  };
}
