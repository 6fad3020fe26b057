import type { ReactNode } from 'react';

export function EmptyState({ title, hint, action, testId }: { title: string; hint?: string; action?: ReactNode; testId?: string }) {
  return (
    <div className="empty" data-testid={testId}>
      <p className="empty-title">{title}</p>
      {hint && <p className="empty-hint">{hint}</p>}
      {action}
    </div>
  );
}
