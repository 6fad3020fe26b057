// Serial console (issue 14): the VM's first serial port in xterm.js over WS /api/vms/:id/serial.
// Loaded lazily (it pulls in xterm). Raw bytes both ways; copy/paste through the toolbar (and the
// terminal's own selection and paste); the terminal fits its box when it is resized.
import { useCallback, useEffect, useRef, useState } from 'react';
import { Terminal } from '@xterm/xterm';
import { FitAddon } from '@xterm/addon-fit';
import '@xterm/xterm/css/xterm.css';
import type { Vm } from '@qemu-manager/contract';
import { Button } from '../../components/Button';
import { errorMessage } from '../../api/client';
import { vmsApi } from '../../api/endpoints';
import { t } from '../../i18n';
import { canOpenConsole } from '../vms/actions';
import { serialUrl } from './serialUrl';

type SerialState = 'waiting' | 'connecting' | 'connected' | 'closed' | 'failed';

export default function SerialConsole({ vm }: { vm: Vm }) {
  const box = useRef<HTMLDivElement>(null);
  const term = useRef<Terminal | null>(null);
  const ws = useRef<WebSocket | null>(null);
  const [state, setState] = useState<SerialState>('waiting');
  const [error, setError] = useState<string | null>(null);
  const [attempt, setAttempt] = useState(0);
  const running = canOpenConsole(vm.status);

  // The terminal: made once, fitted to its box whenever the box changes size.
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const terminal = new Terminal({ convertEol: false, cursorBlink: true, scrollback: 5000, fontSize: 13 });
    const fit = new FitAddon();
    terminal.loadAddon(fit);
    terminal.open(el);
    fit.fit();
    term.current = terminal;
    const encoder = new TextEncoder();
    const input = terminal.onData((data) => {
      if (ws.current?.readyState === WebSocket.OPEN) ws.current.send(encoder.encode(data));
    });
    const observer = new ResizeObserver(() => fit.fit());
    observer.observe(el);
    return () => {
      observer.disconnect();
      input.dispose();
      terminal.dispose();
      term.current = null;
    };
  }, []);

  // One WebSocket per attempt, each with a fresh single-use ticket.
  useEffect(() => {
    if (!running) {
      setState('waiting');
      return;
    }
    let cancelled = false;
    setState('connecting');
    setError(null);
    vmsApi.serialTicket(vm.id).then(
      ({ ticket }) => {
        if (cancelled) return;
        const socket = new WebSocket(serialUrl(vm.id, ticket));
        socket.binaryType = 'arraybuffer';
        ws.current = socket;
        socket.onopen = () => {
          setState('connected');
          term.current?.reset();
          term.current?.focus();
        };
        socket.onmessage = (ev: MessageEvent<ArrayBuffer | string>) => {
          term.current?.write(typeof ev.data === 'string' ? ev.data : new Uint8Array(ev.data));
        };
        socket.onclose = () => {
          if (!cancelled) setState((s) => (s === 'connected' ? 'closed' : 'failed'));
        };
      },
      (err: unknown) => {
        if (cancelled) return;
        setError(errorMessage(err));
        setState('failed');
      },
    );
    return () => {
      cancelled = true;
      ws.current?.close();
      ws.current = null;
    };
  }, [vm.id, running, attempt]);

  const copy = useCallback(() => {
    const text = term.current?.getSelection() ?? '';
    if (text) void navigator.clipboard?.writeText(text);
  }, []);
  const paste = useCallback(() => {
    void navigator.clipboard?.readText().then((text) => {
      if (text) term.current?.paste(text);
    });
  }, []);

  return (
    <div className="serial-console" data-testid="serial-console">
      <div className="console-toolbar">
        <span className="muted" data-testid="serial-state">
          {t.serial.states[state]}
        </span>
        <Button size="sm" variant="ghost" onClick={copy} disabled={state !== 'connected'} data-testid="serial-copy">
          {t.serial.copy}
        </Button>
        <Button size="sm" variant="ghost" onClick={paste} disabled={state !== 'connected'} data-testid="serial-paste">
          {t.serial.paste}
        </Button>
        {(state === 'closed' || state === 'failed') && running && (
          <Button size="sm" onClick={() => setAttempt((n) => n + 1)} data-testid="serial-reconnect">
            {t.serial.reconnect}
          </Button>
        )}
      </div>
      {error && <p className="error-text" data-testid="serial-error">{error}</p>}
      <div ref={box} className="serial-terminal" style={{ height: '24rem', minHeight: '12rem', resize: 'vertical', overflow: 'hidden' }} data-testid="serial-terminal" />
    </div>
  );
}
