import { useMutation, useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { qk, upsertVm } from '../../api/queries';
import type { PowerAction } from './actions';

/** Calls the endpoint for a power action; resolves with the updated VM when the server returns one. */
export async function runPowerAction(id: string, action: PowerAction): Promise<Vm | null> {
  switch (action) {
    case 'start':
      return (await vmsApi.start(id)).vm;
    case 'stop':
      await vmsApi.stop(id);
      return null;
    case 'shutdown':
      return vmsApi.shutdown(id, {});
    case 'reboot':
      return vmsApi.reboot(id);
    case 'reset':
      return vmsApi.reset(id);
    case 'pause':
      return vmsApi.pause(id);
    case 'resume':
      return vmsApi.resume(id);
  }
}

/** One power action at a time per VM, with its error kept for display next to the VM. */
export function useVmAction(vmId: string) {
  const qc = useQueryClient();
  const m = useMutation({
    mutationKey: ['vm-action', vmId],
    mutationFn: (action: PowerAction) => runPowerAction(vmId, action),
    onSuccess: (vm) => {
      if (vm) upsertVm(qc, vm);
      else void qc.invalidateQueries({ queryKey: qk.vm(vmId) });
    },
  });
  return {
    run: (action: PowerAction) => m.mutate(action),
    pending: m.isPending ? m.variables : undefined,
    failed: m.isError ? m.variables : undefined,
    error: m.error,
    reset: m.reset,
  };
}
