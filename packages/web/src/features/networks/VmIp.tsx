// Networks (issue 11): a VM's first known address in the VM list, with a copy button. It comes
// with the VM object (no request per row), so a list of 1,000 stays one request.
import { memo } from 'react';
import type { Vm } from '@qemu-manager/contract';
import { CopyButton } from '../../components/CopyButton';
import { t } from '../../i18n';
import { firstAddress } from './networkRules';

export const VmIp = memo(function VmIp({ vm }: { vm: Pick<Vm, 'addresses' | 'name'> }) {
  const ip = firstAddress(vm);
  if (!ip) return null;
  return (
    <span className="vm-ip" data-testid={`vm-ip-${vm.name}`} title={t.networks.listIp(ip)}>
      <span className="mono">{ip}</span>
      <CopyButton text={ip} testId={`vm-ip-copy-${vm.name}`} />
    </span>
  );
});
