import { useRef, useState } from 'react';
import { Button } from '../../components/Button';
import { Dialog } from '../../components/Dialog';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import { sendKeyEvents, textToKeyEvents, type KeyEvent } from './keysyms';

interface Props {
  open: boolean;
  onClose: () => void;
  send: (e: KeyEvent) => void;
  disabled: boolean;
}

/** "Type this text": a paste that arrives in the guest as key presses. */
export function TypeTextDialog({ open, onClose, send, disabled }: Props) {
  const [text, setText] = useState('');
  const [progress, setProgress] = useState<{ done: number; total: number } | null>(null);
  const abort = useRef<AbortController | null>(null);
  const { events, unsupported } = textToKeyEvents(text);
  const total = events.filter((e) => !e.down).length;

  const close = () => {
    abort.current?.abort();
    onClose();
  };
  const type = async () => {
    const ctrl = new AbortController();
    abort.current = ctrl;
    setProgress({ done: 0, total });
    let ups = 0;
    await sendKeyEvents(events, send, {
      signal: ctrl.signal,
      onProgress: () => setProgress({ done: ++ups, total }),
    });
    abort.current = null;
    setProgress(null);
    if (!ctrl.signal.aborted) {
      setText('');
      onClose();
    }
  };

  const typing = progress !== null;
  return (
    <Dialog
      open={open}
      onClose={close}
      title={t.console.typeTextTitle}
      testId="type-text-dialog"
      footer={
        <>
          <Button onClick={close}>{typing ? t.common.cancel : t.common.close}</Button>
          <Button variant="primary" busy={typing} disabled={disabled || events.length === 0} onClick={() => void type()} data-testid="type-text-submit">
            {typing ? t.console.typing(progress.done, progress.total) : t.console.typeTextSubmit}
          </Button>
        </>
      }
    >
      <Field label={t.console.typeText} hint={t.console.typeTextHint} error={unsupported.length ? t.console.typeTextUnsupported(unsupported.join(' ')) : null}>
        <textarea data-testid="type-text-input" rows={5} value={text} spellCheck={false} autoFocus disabled={typing} onChange={(e) => setText(e.target.value)} />
      </Field>
    </Dialog>
  );
}
