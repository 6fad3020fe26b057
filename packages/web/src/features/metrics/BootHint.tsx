// The stuck-boot hint (issue 14): a badge on a running VM the server thinks is stuck at boot
// (nothing to boot, or a screen unchanged with an idle CPU), in the list and on the VM page.
import type { Vm } from '@qemu-manager/contract';
import { t } from '../../i18n';

export function BootHint({ vm, testId }: { vm: Vm; testId: string }) {
  if (!vm.hint || vm.status === 'stopped') return null;
  const words = t.metrics.hint[vm.hint.kind];
  return (
    <span className="badge badge-hint" title={words.title} data-testid={testId} data-kind={vm.hint.kind} role="status">
      {words.label}
    </span>
  );
}
