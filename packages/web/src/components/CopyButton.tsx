import { useState } from 'react';
import { t } from '../i18n';

/** Copies text; says "Copied" or, when the browser refuses (plain http), why. */
export function CopyButton({ text, testId }: { text: string; testId?: string }) {
  const [state, setState] = useState<string>('idle') /* 'idle', 'copied' or why copying failed */;
  const copy = async () => {
    try {
      // Browsers offer the clipboard only on https and localhost.
      if (!navigator.clipboard) throw new Error(t.common.copyUnavailable);
      await navigator.clipboard.writeText(text);
      setState('copied');
      setTimeout(() => setState('idle'), 1500);
    } catch (err) {
      setState(err instanceof Error ? err.message : t.errors.unexpected);
    }
  };
  return (
    <span className="copy">
      <button type="button" className="btn btn-ghost btn-sm" onClick={() => void copy()} data-testid={testId}>
        {state === 'copied' ? t.common.copied : t.common.copy}
      </button>
      {state !== 'idle' && state !== 'copied' && <span className="field-error" role="alert">{state}</span>}
    </span>
  );
}
