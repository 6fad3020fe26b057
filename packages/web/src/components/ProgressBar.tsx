/** Determinate when `value` (0..100) is given, otherwise an indeterminate stripe. */
export function ProgressBar({ value, label, testId }: { value?: number; label: string; testId?: string }) {
  const indeterminate = value === undefined;
  return (
    <div
      className={`progress ${indeterminate ? 'is-indeterminate' : ''}`}
      role="progressbar"
      aria-label={label}
      aria-valuemin={0}
      aria-valuemax={100}
      aria-valuenow={indeterminate ? undefined : value}
      data-testid={testId}
    >
      <div className="progress-bar" style={indeterminate ? undefined : { width: `${value}%` }} />
    </div>
  );
}
