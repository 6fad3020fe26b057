import type { ReactNode } from 'react';
import { errorMessage } from '../api/client';
import { t } from '../i18n';

interface Props {
  error: unknown;
  testId?: string;
  onDismiss?: () => void;
  /** Extra controls after the message (e.g. "Power off now"). */
  children?: ReactNode;
  className?: string;
}

/** An error in words, placed next to what caused it. Renders nothing when there is no error. */
export function ErrorText({ error, testId, onDismiss, children, className }: Props) {
  if (error == null || error === false) return null;
  return (
    <div className={`error-text ${className ?? ''}`} role="alert" data-testid={testId}>
      <span className="error-icon" aria-hidden="true">!</span>
      <span className="error-message">{errorMessage(error)}</span>
      {children}
      {onDismiss && (
        <button type="button" className="link-button" onClick={onDismiss}>
          {t.common.dismiss}
        </button>
      )}
    </div>
  );
}
