// The console's connection state machine (pure). Bad transitions are rejected: `transition`
// returns the very same state object, so React does not re-render and no side effect runs.
//
//   idle ──VM up──▶ connecting(n) ──connected──▶ connected
//     │                │  ▲                         │
//     │          lost  │  │ retry (backoff)         │ lost
//     │                ▼  │                         ▼
//     │            disconnected(n) ◀────────────────┘
//     │                │ n ≥ MAX_ATTEMPTS, or security failure
//     │                ▼
//     │             failed ──user──▶ connecting(1)
//     └──VM down (from any state)──▶ waiting ──VM up──▶ connecting(1)

export type ConsoleState =
  | { kind: 'idle' }
  | { kind: 'waiting' }
  | { kind: 'connecting'; attempt: number }
  | { kind: 'connected' }
  | { kind: 'disconnected'; attempt: number; reason?: string }
  | { kind: 'failed'; reason?: string };

export type ConsoleEvent =
  | { type: 'VM_STATUS'; running: boolean }
  | { type: 'RFB_CONNECTED' }
  | { type: 'RFB_DISCONNECTED'; reason?: string }
  | { type: 'SECURITY_FAILURE'; reason?: string }
  | { type: 'RETRY' }
  | { type: 'USER_RECONNECT' };

export const MAX_ATTEMPTS = 6;
export const initialConsoleState: ConsoleState = { kind: 'idle' };

export function transition(state: ConsoleState, event: ConsoleEvent): ConsoleState {
  switch (event.type) {
    case 'VM_STATUS':
      if (!event.running) return state.kind === 'waiting' ? state : { kind: 'waiting' };
      return state.kind === 'idle' || state.kind === 'waiting' ? { kind: 'connecting', attempt: 1 } : state;
    case 'RFB_CONNECTED':
      return state.kind === 'connecting' ? { kind: 'connected' } : state;
    case 'RFB_DISCONNECTED':
      if (state.kind === 'connected') return { kind: 'disconnected', attempt: 0, reason: event.reason };
      if (state.kind === 'connecting') {
        return state.attempt >= MAX_ATTEMPTS
          ? { kind: 'failed', reason: event.reason }
          : { kind: 'disconnected', attempt: state.attempt, reason: event.reason };
      }
      return state;
    case 'SECURITY_FAILURE':
      return state.kind === 'connecting' || state.kind === 'connected' ? { kind: 'failed', reason: event.reason } : state;
    case 'RETRY':
      return state.kind === 'disconnected' ? { kind: 'connecting', attempt: state.attempt + 1 } : state;
    case 'USER_RECONNECT':
      return state.kind === 'failed' || state.kind === 'disconnected' ? { kind: 'connecting', attempt: 1 } : state;
  }
}

/** Backoff before the next attempt: 0.5 s, 1 s, 2 s, 4 s, then 5 s. */
export function retryDelayMs(failedAttempts: number): number {
  return Math.min(5000, 500 * 2 ** Math.max(0, failedAttempts - 1));
}

/** Whether an RFB object should exist in this state. */
export const wantsSession = (s: ConsoleState): boolean => s.kind === 'connecting' || s.kind === 'connected';
