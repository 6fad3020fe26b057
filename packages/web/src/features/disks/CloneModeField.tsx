import type { CloneMode } from '@qemu-manager/contract';
import { t } from '../../i18n';

const MODES: readonly CloneMode[] = ['linked', 'full'];

/** Full or linked, each with a sentence on what it means. */
export function CloneModeField({ value, onChange, hints, disabled, testId }: {
  value: CloneMode;
  onChange: (m: CloneMode) => void;
  hints: Record<CloneMode, string>;
  disabled?: boolean;
  testId: string;
}) {
  return (
    <fieldset className="fieldset choices" data-testid={testId} disabled={disabled}>
      <legend>{t.storage.mode}</legend>
      {MODES.map((m) => (
        <label key={m} className="choice">
          <input type="radio" name={testId} value={m} checked={value === m} onChange={() => onChange(m)} data-testid={`${testId}-${m}`} />
          <span className="choice-text">
            <span className="choice-title">{t.storage.modes[m]}</span>
            <span className="field-hint">{hints[m]}</span>
          </span>
        </label>
      ))}
    </fieldset>
  );
}
