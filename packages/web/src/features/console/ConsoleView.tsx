// The console: noVNC canvas + toolbar. Loaded lazily (it pulls in noVNC).
import { useEffect, useRef, useState, type ReactNode } from 'react';
import type { Vm } from '@qemu-manager/contract';
import { Button } from '../../components/Button';
import { Menu } from '../../components/Menu';
import { StatusBadge } from '../../components/StatusBadge';
import { t } from '../../i18n';
import { canOpenConsole, canStart } from '../vms/actions';
import { useVmAction } from '../vms/useVmAction';
import { ErrorText } from '../../components/ErrorText';
import { COMBOS, comboToKeyEvents } from './keysyms';
import { TypeTextDialog } from './TypeTextDialog';
import { useRfbConnection } from './useRfbConnection';

interface Props {
  vm: Vm;
  variant: 'page' | 'embedded';
  /** Shown at the start of the toolbar (the full-window page puts its title there). */
  leading?: ReactNode;
}

export default function ConsoleView({ vm, variant, leading }: Props) {
  const screen = useRef<HTMLDivElement>(null);
  const frame = useRef<HTMLDivElement>(null);
  const [scale, setScale] = useState(true);
  const [typing, setTyping] = useState(false);
  const conn = useRfbConnection(vm.id, canOpenConsole(vm.status), screen, scale);
  const start = useVmAction(vm.id);
  const { state } = conn;
  const connected = state.kind === 'connected';

  const { setScale: applyScale, focus } = conn;
  useEffect(() => applyScale(scale), [scale, applyScale, connected]);
  useEffect(() => {
    if (connected && variant === 'page') focus();
  }, [connected, variant, focus]);

  const fullscreen = () => {
    const el = frame.current;
    if (!el) return;
    if (document.fullscreenElement) void document.exitFullscreen();
    else void el.requestFullscreen().catch(() => {});
  };

  const stateText =
    state.kind === 'connecting' && state.attempt > 1
      ? `${t.console.states.connecting} (${t.console.attempt(state.attempt)})`
      : t.console.states[state.kind];

  return (
    <div className={`console console-${variant}`} ref={frame} data-testid="console-view">
      <div className="console-toolbar">
        {leading}
        <span className={`console-state state-${state.kind}`} data-testid="console-state" data-state={state.kind} role="status">
          <span className="dot" aria-hidden="true" />
          {stateText}
        </span>
        <div className="console-tools">
          <Menu
            label={t.console.keys}
            items={COMBOS.map((c) => ({
              key: c.id,
              label: c.label,
              testId: `combo-${c.id}`,
              onSelect: () => {
                if (c.id === 'ctrl-alt-del') conn.sendCtrlAltDel();
                else comboToKeyEvents(c).forEach(conn.send);
                conn.focus();
              },
            }))}
            testId="console-keys"
            disabled={!connected}
            trigger="text"
          />
          <Button size="sm" variant="ghost" disabled={!connected} onClick={() => setTyping(true)} data-testid="console-type-text">
            {t.console.typeText}
          </Button>
          <Button size="sm" variant="ghost" onClick={() => setScale((s) => !s)} aria-pressed={scale} data-testid="console-scale">
            {scale ? t.console.actualSize : t.console.scale}
          </Button>
          <Button size="sm" variant="ghost" onClick={fullscreen} data-testid="console-fullscreen">
            {t.console.fullscreen}
          </Button>
        </div>
      </div>
      <div className="console-stage">
        <div className="console-screen" ref={screen} data-testid="console-screen" />
        {!connected && (
          <div className="console-overlay" data-testid="console-overlay">
            {state.kind === 'waiting' || state.kind === 'idle' ? (
              <div className="console-message" data-testid="console-waiting">
                <StatusBadge status={vm.status} />
                {vm.status === 'starting' ? (
                  <p>{t.console.startingHint}</p>
                ) : (
                  <>
                    <p>{t.console.states.waiting}</p>
                    <p className="muted">{t.console.waitingHint}</p>
                  </>
                )}
                {canStart(vm.status) && (
                  <Button variant="primary" busy={start.pending === 'start'} onClick={() => start.run('start')} data-testid="console-start">
                    {t.console.start}
                  </Button>
                )}
                <ErrorText error={start.error} onDismiss={start.reset} />
              </div>
            ) : state.kind === 'failed' ? (
              <div className="console-message" data-testid="console-failed">
                <p>{t.console.states.failed}</p>
                <p className="muted">{state.reason ?? t.console.failedHint}</p>
                <Button variant="primary" onClick={conn.reconnect} data-testid="console-reconnect">
                  {t.console.reconnect}
                </Button>
              </div>
            ) : (
              <div className="console-message">
                <span className="spinner" aria-hidden="true" />
                <p>{stateText}</p>
              </div>
            )}
          </div>
        )}
      </div>
      <TypeTextDialog
        open={typing}
        disabled={!connected}
        send={conn.send}
        onClose={() => {
          setTyping(false);
          conn.focus();
        }}
      />
    </div>
  );
}
