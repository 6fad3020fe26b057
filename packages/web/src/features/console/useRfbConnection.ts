// Drives noVNC's RFB object from the connection state machine. Lives in the lazy console chunk.
import { useCallback, useEffect, useReducer, useRef, type RefObject } from 'react';
import RFB from '@novnc/novnc';
import { initialConsoleState, retryDelayMs, transition, wantsSession, type ConsoleState } from './connectionMachine';
import type { KeyEvent } from './keysyms';
import { errorMessage } from '../../api/client';
import { vmsApi } from '../../api/endpoints';
import { t } from '../../i18n';

/** The console WebSocket URL; the ticket (POST /api/vms/:id/console) admits one connection. */
export function vncUrl(vmId: string, ticket: string | null, loc: Pick<Location, 'protocol' | 'host'> = location): string {
  const base = `${loc.protocol === 'https:' ? 'wss' : 'ws'}://${loc.host}/api/vnc/${encodeURIComponent(vmId)}`;
  return ticket ? `${base}?ticket=${encodeURIComponent(ticket)}` : base;
}

export interface RfbConnection {
  state: ConsoleState;
  reconnect: () => void;
  send: (e: KeyEvent) => void;
  sendCtrlAltDel: () => void;
  focus: () => void;
  setScale: (scale: boolean) => void;
}

export function useRfbConnection(vmId: string, vmRunning: boolean, screen: RefObject<HTMLDivElement | null>, scale: boolean): RfbConnection {
  const [state, dispatch] = useReducer(transition, initialConsoleState);
  const rfbRef = useRef<RFB | null>(null);
  const scaleRef = useRef(scale);
  scaleRef.current = scale;

  // The VM's live status (from server events) drives waiting/connecting.
  useEffect(() => {
    dispatch({ type: 'VM_STATUS', running: vmRunning });
  }, [vmRunning]);

  // Open one RFB per connection attempt, each with a fresh single-use ticket.
  const attemptKey = state.kind === 'connecting' ? state.attempt : 0;
  useEffect(() => {
    if (state.kind !== 'connecting') return;
    let cancelled = false;
    vmsApi.consoleTicket(vmId).then(
      ({ ticket }) => {
        if (!cancelled) open(ticket);
      },
      (err: unknown) => {
        if (!cancelled) dispatch({ type: 'RFB_DISCONNECTED', reason: errorMessage(err) });
      },
    );
    return () => {
      cancelled = true;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps -- one RFB per attempt
  }, [attemptKey, vmId]);

  function open(ticket: string) {
    if (!screen.current) return;
    const target = screen.current;
    const rfb = new RFB(target, vncUrl(vmId, ticket), { shared: true });
    rfb.scaleViewport = scaleRef.current;
    rfb.clipViewport = !scaleRef.current;
    rfb.dragViewport = false;
    rfb.resizeSession = false;
    rfb.focusOnClick = true;
    rfb.showDotCursor = true;
    rfb.background = 'transparent';
    rfbRef.current = rfb;
    target.querySelector('canvas')?.setAttribute('data-testid', 'console-canvas');
    rfb.addEventListener('connect', () => {
      if (rfbRef.current === rfb) dispatch({ type: 'RFB_CONNECTED' });
    });
    rfb.addEventListener('disconnect', (e) => {
      if (rfbRef.current !== rfb) return; // we closed it ourselves
      rfbRef.current = null;
      dispatch({ type: 'RFB_DISCONNECTED', reason: e.detail.clean ? undefined : t.console.lostUnclean });
    });
    rfb.addEventListener('securityfailure', (e) => {
      if (rfbRef.current === rfb) dispatch({ type: 'SECURITY_FAILURE', reason: e.detail.reason });
    });
    rfb.addEventListener('credentialsrequired', () => {
      if (rfbRef.current === rfb) dispatch({ type: 'SECURITY_FAILURE', reason: t.console.credentials });
    });
  }

  // Tear the session down whenever the machine says there should be none.
  const sessionWanted = wantsSession(state);
  useEffect(() => {
    if (sessionWanted) return;
    const rfb = rfbRef.current;
    rfbRef.current = null;
    rfb?.disconnect();
  }, [sessionWanted]);
  useEffect(
    () => () => {
      const rfb = rfbRef.current;
      rfbRef.current = null;
      rfb?.disconnect();
    },
    [],
  );

  // Back off, then retry.
  const retryIn = state.kind === 'disconnected' ? retryDelayMs(state.attempt) : null;
  useEffect(() => {
    if (retryIn === null) return;
    const id = setTimeout(() => dispatch({ type: 'RETRY' }), retryIn);
    return () => clearTimeout(id);
  }, [retryIn, state]);

  return {
    state,
    reconnect: useCallback(() => dispatch({ type: 'USER_RECONNECT' }), []),
    send: useCallback((e: KeyEvent) => rfbRef.current?.sendKey(e.keysym, e.code, e.down), []),
    sendCtrlAltDel: useCallback(() => rfbRef.current?.sendCtrlAltDel(), []),
    focus: useCallback(() => rfbRef.current?.focus({ preventScroll: true }), []),
    setScale: useCallback((s: boolean) => {
      const rfb = rfbRef.current;
      if (!rfb) return;
      rfb.scaleViewport = s;
      rfb.clipViewport = !s;
    }, []),
  };
}
