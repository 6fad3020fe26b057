import { t } from '../../i18n';
import type { Step } from './createVmFlow';

const ICON: Record<Step['status'], string> = { pending: '○', running: '', done: '✓', failed: '✕', skipped: '–' };

/** The steps of a multi-call operation, each with its state and, on failure, the reason in words. */
export function StepList({ steps }: { steps: Step[] }) {
  return (
    <ol className="steps" data-testid="create-vm-steps">
      {steps.map((s) => (
        <li key={s.id} className={`step step-${s.status}`} data-testid={`step-${s.id}`} data-status={s.status}>
          <span className="step-icon" aria-hidden="true">
            {s.status === 'running' ? <span className="spinner" /> : ICON[s.status]}
          </span>
          <span className="step-label">{t.createVm.steps[s.id]}</span>
          {s.error && (
            <span className="step-error" role="alert">
              {s.error}
            </span>
          )}
        </li>
      ))}
    </ol>
  );
}
