import { ErrorBody, type ErrorCode } from '@qemu-manager/contract';
import { STATUS_CODES } from 'node:http';
import type { FastifyReply } from 'fastify';

/**
 * The one table from error code to HTTP status. Lower layers throw AppError(code, message) and
 * never name a status; everything that answers with an error (the error handler, the 404 handler,
 * the guard, the HTTP parser's refusals, the console upgrade) looks the status up here.
 */
export const ERROR_STATUS: Readonly<Record<ErrorCode, number>> = {
  BAD_REQUEST: 400, // a malformed request (not JSON, bad request target)
  VALIDATION: 400, // a body, query or parameter that breaks its schema or a host bound
  PATH_NOT_ALLOWED: 400, // a path outside the storage roots, or not absolute
  IMAGE_NOT_ALLOWED: 400, // an image (or one of its backing files) that may not be used as asked
  NOT_A_REGULAR_FILE: 400,
  UNAUTHORIZED: 401,
  FORBIDDEN: 403, // authenticated, but the token's scope is too small
  HOST_NOT_ALLOWED: 403, // a Host header that is not this server (DNS rebinding)
  ORIGIN_NOT_ALLOWED: 403, // a cross-site state change or WebSocket
  NOT_FOUND: 404, // no such route, token or resource
  VM_NOT_FOUND: 404, // whatever the form of the id
  DISK_NOT_FOUND: 404,
  DISK_NOT_ATTACHED: 404, // the disk named is not attached to this VM
  TASK_NOT_FOUND: 404,
  FILE_NOT_FOUND: 404, // the file a request names does not exist
  REQUEST_TIMEOUT: 408, // the client sent too slowly (headers, an idle upload)
  VM_NOT_STOPPED: 409, // the VM state table refuses the action
  VM_NOT_RUNNING: 409,
  VM_BUSY: 409,
  AGENT_UNAVAILABLE: 409, // the guest agent (issue 14) does not answer where the request needs it
  // networks (issue 11)
  NETWORK_NOT_FOUND: 404,
  NIC_NOT_FOUND: 404,
  FORWARD_NOT_FOUND: 404,
  NETWORK_IN_USE: 409, // a VM has a NIC on it: not deleted
  NETWORK_CONFLICT: 409, // the subnet overlaps another network or one of the host's
  PORT_IN_USE: 409, // the host port is taken (by a forward or anything else on the host)
  MAC_IN_USE: 409,
  BRIDGE_INVALID: 422, // not an existing host bridge
  NETWORKS_UNAVAILABLE: 422, // managed and bridge networks need the server to run as root
  FORWARD_UNSUPPORTED: 422, // no NIC a forward can reach (none on user or nat, or no fixed address)
  NETWORK_SETUP_FAILED: 500, // the host refused a step (what it said is in the message; the steps done were undone)
  NAME_TAKEN: 409,
  DISK_IN_USE: 409,
  ISO_IN_USE: 409,
  DISK_NOT_READY: 409,
  TASK_FINISHED: 409, // a task that has ended cannot be cancelled
  FILE_MISSING: 409, // a file a VM or disk refers to is gone from the host
  IMAGE_UNREADABLE: 409, // a managed image that qemu-img cannot read (not what we made)
  NO_FREE_PORT: 409,
  LIMIT_EXCEEDED: 409, // a host-wide total would be passed
  QEMU_ERROR: 409, // QEMU refused a command in the VM's current state
  TIMEOUT: 409, // the guest did not do what was asked in time (it still runs)
  PAYLOAD_TOO_LARGE: 413,
  UNSUPPORTED_MEDIA_TYPE: 415, // only JSON bodies (and ISO uploads) are accepted
  QEMU_START_FAILED: 422, // QEMU refused to start with this definition
  RATE_LIMITED: 429,
  HEADERS_TOO_LARGE: 431,
  INTERNAL: 500,
  QEMU_UNREACHABLE: 502, // QEMU (QMP or VNC) did not answer
  TOOL_TIMEOUT: 504, // a host tool reading an image took too long and was stopped
  // disk resize (issue 10)
  DISK_CANNOT_SHRINK: 409, // a resize to the disk's size or smaller: only growing is done
  DISK_NOT_RESIZABLE: 409, // a disk whose format cannot be resized (vmdk)
  // snapshots (issue 10)
  SNAPSHOT_NOT_FOUND: 404, // no snapshot of that name on this VM
  SNAPSHOT_UNSUPPORTED: 409, // a disk is not qcow2, the VM has no disk, or its disks changed since the snapshot
  // clones and backing chains (issue 10)
  DISK_HAS_CHILDREN: 409, // other disks back onto this one: it may not be deleted or written
  // backups (issue 13)
  BACKUP_NOT_FOUND: 404,
  TARGET_NOT_FOUND: 404, // no backup target of that name
  TARGET_IN_USE: 409, // a backup target that still holds backups or is named by a schedule
  SCHEDULE_NOT_FOUND: 404,
  // images (issue 12)
  IMAGE_NOT_FOUND: 404, // no image of that name in the library
  IMAGE_IN_USE: 409, // disks back onto the image (or a task reads it): it may not be deleted
  // templates (issue 12)
  VM_IS_TEMPLATE: 409, // a template: it cannot start, its disks cannot be written, attached, detached, resized, snapshotted or reverted
};

export function statusOf(code: ErrorCode): number {
  return ERROR_STATUS[code];
}

/** The v1 error body `{ error, timestamp }` plus the stable `code`. */
export function errorBody(code: ErrorCode, message: string): ErrorBody {
  return { error: message, timestamp: new Date().toISOString(), code };
}

/**
 * A whole HTTP/1.1 error response with a JSON error body, for sockets no Fastify reply exists for
 * (the parser's refusals, refused WebSocket upgrades). The connection closes after it.
 */
export function rawErrorResponse(code: ErrorCode, message: string): string {
  const status = statusOf(code);
  const body = JSON.stringify(errorBody(code, message));
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status] ?? 'Error'}\r\nConnection: close\r\n` +
    `Content-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`
  );
}

/** Answers a Fastify request with the error `code` (its status from the table). */
export function sendError(reply: FastifyReply, code: ErrorCode, message: string): FastifyReply {
  return reply.status(statusOf(code)).send(errorBody(code, message));
}

/** The code a Fastify client error of `status` answers with, when its own code is not in the table. */
export function codeForStatus(status: number): ErrorCode {
  const generic: Partial<Record<number, ErrorCode>> = {
    404: 'NOT_FOUND',
    408: 'REQUEST_TIMEOUT',
    413: 'PAYLOAD_TOO_LARGE',
    415: 'UNSUPPORTED_MEDIA_TYPE',
    431: 'HEADERS_TOO_LARGE',
  };
  return generic[status] ?? 'BAD_REQUEST';
}

/** The status of a route that created something. */
export const CREATED = 201;

/** Every error answer, for route schemas and OpenAPI: the error body, whatever the status. */
export const errorResponses = { '4xx': ErrorBody, '5xx': ErrorBody } as const;

// clones and backing chains (issue 10)
/** The status of a route that started a task (202 { task }). */
export const ACCEPTED_TASK = 202;
