import type { ReactNode } from 'react';

/** A page's title, an optional one-line introduction, and its main action on the right. */
export function PageHeader({ title, intro, action }: { title: string; intro?: string; action?: ReactNode }) {
  return (
    <div className="page-header">
      {intro ? (
        <div>
          <h1>{title}</h1>
          <p className="muted page-intro">{intro}</p>
        </div>
      ) : (
        <h1>{title}</h1>
      )}
      {action}
    </div>
  );
}
