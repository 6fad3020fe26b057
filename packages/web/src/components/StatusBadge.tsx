import type { DiskStatus, VmStatus } from '@qemu-manager/contract';
import { t } from '../i18n';

export function StatusBadge({ status, testId }: { status: VmStatus; testId?: string }) {
  return (
    <span className={`badge badge-${status}`} data-testid={testId} data-status={status}>
      <span className="dot" aria-hidden="true" />
      {t.status[status]}
    </span>
  );
}

export function DiskStatusBadge({ status, testId }: { status: DiskStatus; testId?: string }) {
  return (
    <span className={`badge badge-disk-${status}`} data-testid={testId} data-status={status}>
      <span className="dot" aria-hidden="true" />
      {t.diskStatus[status]}
    </span>
  );
}
