// Metrics (issue 14): every VM's CPU sparkline in one request (GET /api/metrics/summary), polled
// every 10 s while the list is shown; rows look their VM up in the map.
import { useQuery } from '@tanstack/react-query';
import { useMemo } from 'react';
import type { MetricsSummary } from '@qemu-manager/contract';
import { request } from '../../api/client';

export type VmCpu = MetricsSummary['vms'][number];

export function useMetricsSummary(): Map<string, VmCpu> {
  const q = useQuery({
    queryKey: ['metrics', 'summary'] as const,
    queryFn: ({ signal }) => request<MetricsSummary>('GET', '/metrics/summary', undefined, { signal }),
    refetchInterval: 10_000,
    staleTime: 5_000,
  });
  return useMemo(() => new Map((q.data?.vms ?? []).map((v) => [v.id, v])), [q.data]);
}
