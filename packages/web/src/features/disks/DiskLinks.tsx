import { Link } from '../../router';
import { diskAnchor, type DiskLink } from './importRules';

/** Scroll the disks page to a disk's row and put the focus on it (the row shows it is the one). */
export function revealDisk(id: string): void {
  requestAnimationFrame(() => {
    const row = document.getElementById(diskAnchor(id));
    if (!row) return;
    row.scrollIntoView({ block: 'center' });
    row.focus({ preventScroll: true });
  });
}

/** "Imported: a (qcow2), b (qcow2)" as links to those disks' rows; `onFollow` e.g. closes the dialog. */
export function DiskLinks({ label, links, onFollow, testId }: { label: string; links: DiskLink[]; onFollow?: () => void; testId: string }) {
  if (links.length === 0) return null;
  return (
    <p className="ok-text" role="status" data-testid={testId}>
      {label}{' '}
      {links.map((l, i) => (
        <span key={l.id}>
          {i > 0 && ', '}
          <Link to={l.href} data-testid={`${testId}-link`} data-disk-id={l.id} onClick={() => { onFollow?.(); revealDisk(l.id); }}>
            {l.name}
          </Link>
          {l.format && ` (${l.format})`}
        </span>
      ))}
    </p>
  );
}
