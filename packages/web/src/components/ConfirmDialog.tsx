import { useState, type ReactNode } from 'react';
import { t } from '../i18n';
import { Button } from './Button';
import { Dialog } from './Dialog';
import { ErrorText } from './ErrorText';

interface Props {
  open: boolean;
  title: ReactNode;
  body: ReactNode;
  confirmLabel: string;
  danger?: boolean;
  onConfirm: () => Promise<unknown>;
  onClose: () => void;
  testId?: string;
}

/** Replaces window.confirm(): runs the action, shows its error inside, closes on success. */
export function ConfirmDialog({ open, title, body, confirmLabel, danger, onConfirm, onClose, testId = 'confirm-dialog' }: Props) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>(null);
  const close = () => {
    setError(null);
    onClose();
  };
  const confirm = async () => {
    setBusy(true);
    setError(null);
    try {
      await onConfirm();
      setBusy(false);
      close();
    } catch (err) {
      setBusy(false);
      setError(err);
    }
  };
  return (
    <Dialog
      open={open}
      onClose={close}
      title={title}
      testId={testId}
      locked={busy}
      size="sm"
      footer={
        <>
          <Button onClick={close} disabled={busy} data-testid={`${testId}-cancel`}>
            {t.common.cancel}
          </Button>
          <Button variant={danger ? 'danger' : 'primary'} busy={busy} onClick={() => void confirm()} data-testid={`${testId}-confirm`}>
            {confirmLabel}
          </Button>
        </>
      }
    >
      <div className="confirm-body">{body}</div>
      <ErrorText error={error} testId={`${testId}-error`} />
    </Dialog>
  );
}
