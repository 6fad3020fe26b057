import type { ErrorCode } from '@qemu-manager/contract';
import type { FastifyInstance } from 'fastify';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { isAppError } from '../lib/errors.js';
import { rawErrorResponse, statusOf } from './error-table.js';
import { checkTarget, type Guard, type Refusal } from './guard.js';

const CONSOLE_PATH = /^\/api\/vnc\/([^/]{1,64})$/;
/** Serial console (issue 14). */
const SERIAL_PATH = /^\/api\/vms\/([^/]{1,64})\/serial$/;

/** What the console upgrade needs from the rest of the server (passed in: http/ knows no domain folder). */
export interface ConsoleUpgradeDeps {
  guard: Guard;
  /** Whether a ticket is required for every console (authentication is on). */
  ticketRequired(): boolean;
  /** Redeems a one-time console ticket for this VM (and this kind of console). */
  redeemTicket(ticket: string | null, vmId: string, kind?: 'vnc' | 'serial'): boolean;
  /** Throws the AppError that keeps this VM's console from opening (unknown, not running, ...). */
  checkConsole(vmId: string): void;
  /** The WebSocket ↔ VNC proxy; false when it does not take the request. */
  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
  /** Records the console open in the audit log (with the status the open got). */
  audit(entry: { at: string; actor: string; ip: string | null; target: string; status: number }): void;
  /** Serial console (issue 14): WS /api/vms/{vm_id}/serial, with tickets of kind serial. */
  serial?: {
    checkConsole(vmId: string): void;
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): boolean;
    audit(entry: { at: string; actor: string; ip: string | null; target: string; status: number }): void;
  };
}

function reject(socket: Duplex, r: Refusal): void {
  socket.end(rawErrorResponse(r.code, r.message));
}

/**
 * The console's WebSocket upgrade (`/api/vnc/{vm_id}`): request target, Host and Origin as for any
 * request, then a one-time ticket when authentication is on; the proxy then connects to the VM's
 * VNC server before completing the handshake.
 */
export function registerConsoleUpgrade(app: FastifyInstance, deps: ConsoleUpgradeDeps): void {
  app.server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const badTarget = checkTarget(req.url);
    if (badTarget) return reject(socket, badTarget);
    const url = new URL(req.url ?? '/', 'http://x');
    const serialId = deps.serial ? SERIAL_PATH.exec(url.pathname)?.[1] : undefined; // serial console (issue 14)
    const kind = serialId ? 'serial' : 'vnc';
    const target = serialId ? deps.serial! : deps;
    const vmId = serialId ?? CONSOLE_PATH.exec(url.pathname)?.[1];
    if (!vmId) return reject(socket, { code: 'NOT_FOUND', message: 'No WebSocket here' });
    const refusal = deps.guard.checkUpgrade(req);
    if (refusal) return reject(socket, refusal);
    // With authentication on, a console needs a ticket for this VM (POST /api/vms/{id}/console).
    const ticket = url.searchParams.get('ticket');
    if ((deps.ticketRequired() || ticket !== null) && !deps.redeemTicket(ticket, vmId, kind)) {
      return reject(socket, { code: 'UNAUTHORIZED', message: 'Missing, used, expired or foreign console ticket' });
    }
    const entry = { at: new Date().toISOString(), actor: ticket ? 'ticket' : 'local', ip: req.socket.remoteAddress ?? null };
    let code: ErrorCode | null = null;
    try {
      target.checkConsole(vmId); // the proxy asks again; this tells the audit log whether the console can open
    } catch (err) {
      code = isAppError(err) ? err.code : 'INTERNAL';
    }
    if (!target.handleUpgrade(req, socket, head)) return void socket.destroy();
    const status = code === null ? 101 : statusOf(code);
    // Recorded off the console's critical path.
    setImmediate(() => target.audit({ ...entry, target: vmId, status }));
  });
}
