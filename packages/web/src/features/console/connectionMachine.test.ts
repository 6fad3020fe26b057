import { describe, expect, it } from 'vitest';
import { initialConsoleState, MAX_ATTEMPTS, retryDelayMs, transition, wantsSession, type ConsoleEvent, type ConsoleState } from './connectionMachine';

const run = (events: ConsoleEvent[], from: ConsoleState = initialConsoleState) => events.reduce(transition, from);
const up: ConsoleEvent = { type: 'VM_STATUS', running: true };
const down: ConsoleEvent = { type: 'VM_STATUS', running: false };

describe('console connection machine', () => {
  it('connects when the VM runs', () => {
    expect(run([up])).toEqual({ kind: 'connecting', attempt: 1 });
    expect(run([up, { type: 'RFB_CONNECTED' }])).toEqual({ kind: 'connected' });
  });

  it('waits with a clear state while the VM is not running', () => {
    expect(run([down])).toEqual({ kind: 'waiting' });
    expect(run([up, { type: 'RFB_CONNECTED' }, down])).toEqual({ kind: 'waiting' });
  });

  it('reconnects when the VM comes back (restart)', () => {
    const s = run([up, { type: 'RFB_CONNECTED' }, { type: 'RFB_DISCONNECTED' }, down, up]);
    expect(s).toEqual({ kind: 'connecting', attempt: 1 });
  });

  it('retries with backoff after a lost connection, then gives up', () => {
    let s = run([up, { type: 'RFB_CONNECTED' }, { type: 'RFB_DISCONNECTED', reason: 'gone' }]);
    expect(s).toEqual({ kind: 'disconnected', attempt: 0, reason: 'gone' });
    s = transition(s, { type: 'RETRY' });
    expect(s).toEqual({ kind: 'connecting', attempt: 1 });
    for (let i = 1; i < MAX_ATTEMPTS; i++) s = run([{ type: 'RFB_DISCONNECTED' }, { type: 'RETRY' }], s);
    expect(s).toEqual({ kind: 'connecting', attempt: MAX_ATTEMPTS });
    s = transition(s, { type: 'RFB_DISCONNECTED', reason: 'HTTP 404' });
    expect(s).toEqual({ kind: 'failed', reason: 'HTTP 404' });
    expect(transition(s, { type: 'USER_RECONNECT' })).toEqual({ kind: 'connecting', attempt: 1 });
  });

  it('fails at once on a security failure', () => {
    expect(run([up, { type: 'SECURITY_FAILURE', reason: 'auth' }])).toEqual({ kind: 'failed', reason: 'auth' });
  });

  it('rejects bad transitions by returning the same object', () => {
    const idle = initialConsoleState;
    expect(transition(idle, { type: 'RFB_CONNECTED' })).toBe(idle);
    expect(transition(idle, { type: 'RETRY' })).toBe(idle);
    expect(transition(idle, { type: 'USER_RECONNECT' })).toBe(idle);
    const waiting = run([down]);
    expect(transition(waiting, { type: 'RFB_DISCONNECTED' })).toBe(waiting);
    expect(transition(waiting, down)).toBe(waiting);
    const connected = run([up, { type: 'RFB_CONNECTED' }]);
    expect(transition(connected, up)).toBe(connected);
    expect(transition(connected, { type: 'RETRY' })).toBe(connected);
    const failed = run([up, { type: 'SECURITY_FAILURE' }]);
    expect(transition(failed, up)).toBe(failed);
  });

  it('leaves a failed console when the VM stops, so a restart reconnects by itself', () => {
    expect(run([up, { type: 'SECURITY_FAILURE' }, down, up])).toEqual({ kind: 'connecting', attempt: 1 });
  });

  it('says when an RFB session should exist', () => {
    expect(wantsSession({ kind: 'connecting', attempt: 1 })).toBe(true);
    expect(wantsSession({ kind: 'connected' })).toBe(true);
    expect(wantsSession({ kind: 'waiting' })).toBe(false);
    expect(wantsSession({ kind: 'disconnected', attempt: 1 })).toBe(false);
  });

  it('backs off exponentially with a cap', () => {
    expect([0, 1, 2, 3, 4, 5, 9].map(retryDelayMs)).toEqual([500, 500, 1000, 2000, 4000, 5000, 5000]);
  });
});
