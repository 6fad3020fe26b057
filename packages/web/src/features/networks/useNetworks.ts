// Networks (issue 11): the list, kept fresh by the VM events (a NIC added or removed changes a
// network's machines; a start brings leases) and a slow poll for the leases themselves.
import { useQuery, useQueryClient } from '@tanstack/react-query';
import { useEffect } from 'react';
import { networkKeys, networksApi } from '../../api/networks';
import { onServerEvent } from '../../api/events';

export function useNetworks(opts: { poll?: boolean } = {}) {
  const qc = useQueryClient();
  useEffect(
    () =>
      onServerEvent((ev) => {
        if (ev.type === 'vm.created' || ev.type === 'vm.updated' || ev.type === 'vm.deleted') void qc.invalidateQueries({ queryKey: networkKeys.networks });
      }),
    [qc],
  );
  return useQuery({
    queryKey: networkKeys.networks,
    queryFn: ({ signal }) => networksApi.list(signal),
    refetchInterval: opts.poll ? 15_000 : false,
  });
}
