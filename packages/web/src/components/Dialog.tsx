import { useEffect, useRef, type ReactNode } from 'react';
import { t } from '../i18n';

interface DialogProps {
  open: boolean;
  onClose: () => void;
  title: ReactNode;
  children: ReactNode;
  footer?: ReactNode;
  testId?: string;
  /** While true, Escape and the close button do nothing (an operation is running). */
  locked?: boolean;
  size?: 'sm' | 'md' | 'lg';
}

/** A modal built on the native <dialog>: focus trap, Escape and the top layer come for free. */
export function Dialog({ open, onClose, title, children, footer, testId, locked = false, size = 'md' }: DialogProps) {
  if (!open) return null;
  return (
    <DialogInner onClose={onClose} title={title} footer={footer} testId={testId} locked={locked} size={size}>
      {children}
    </DialogInner>
  );
}

function DialogInner({ onClose, title, children, footer, testId, locked, size }: Omit<DialogProps, 'open'>) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (d && !d.open) d.showModal();
    return () => d?.close();
  }, []);
  return (
    <dialog
      ref={ref}
      className={`dialog dialog-${size}`}
      data-testid={testId}
      aria-labelledby={testId ? `${testId}-title` : undefined}
      onCancel={(e) => {
        e.preventDefault();
        if (!locked) onClose();
      }}
    >
      <header className="dialog-header">
        <h2 id={testId ? `${testId}-title` : undefined}>{title}</h2>
        <button type="button" className="icon-button" aria-label={t.common.close} onClick={onClose} disabled={locked}>
          ×
        </button>
      </header>
      <div className="dialog-body">{children}</div>
      {footer && <footer className="dialog-footer">{footer}</footer>}
    </dialog>
  );
}
