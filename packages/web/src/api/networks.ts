// Networks (issue 11) and the host's figures (issue 14): typed wrappers around their routes.
// Shapes come from the contract; a create answers the bare object (201), a delete 204.
import type {
  CreateForwardBody, CreateNetworkBody, CreateNicBody, Forward, ForwardList, HostMetrics, MetricsSummary, Network, NetworkList, Nic,
  NicList, UpdateNicBody,
} from '@qemu-manager/contract';
import { request } from './client';

const enc = encodeURIComponent;
const vmPath = (id: string, rest: string) => `/vms/${enc(id)}${rest}`;

/** The object itself, also when a server wraps it in `{ <key>: … }`. */
function unwrap<T>(body: unknown, key: string): T {
  if (body && typeof body === 'object' && key in body && !('id' in body)) return (body as Record<string, T>)[key]!;
  return body as T;
}

export const networksApi = {
  list: (signal?: AbortSignal): Promise<NetworkList> => request<NetworkList>('GET', '/networks', undefined, { signal }),
  create: async (body: CreateNetworkBody): Promise<Network> => unwrap<Network>(await request<unknown>('POST', '/networks', body), 'network'),
  remove: (id: string): Promise<unknown> => request<unknown>('DELETE', `/networks/${enc(id)}`),
};

export const nicsApi = {
  list: async (vmId: string, signal?: AbortSignal): Promise<Nic[]> => (await request<NicList>('GET', vmPath(vmId, '/nics'), undefined, { signal })).nics,
  create: async (vmId: string, body: CreateNicBody): Promise<Nic> => unwrap<Nic>(await request<unknown>('POST', vmPath(vmId, '/nics'), body), 'nic'),
  update: async (vmId: string, nicId: string, body: UpdateNicBody): Promise<Nic> =>
    unwrap<Nic>(await request<unknown>('PATCH', vmPath(vmId, `/nics/${enc(nicId)}`), body), 'nic'),
  remove: (vmId: string, nicId: string): Promise<unknown> => request<unknown>('DELETE', vmPath(vmId, `/nics/${enc(nicId)}`)),
};

export const forwardsApi = {
  list: async (vmId: string, signal?: AbortSignal): Promise<Forward[]> =>
    (await request<ForwardList>('GET', vmPath(vmId, '/forwards'), undefined, { signal })).forwards,
  create: async (vmId: string, body: CreateForwardBody): Promise<Forward> =>
    unwrap<Forward>(await request<unknown>('POST', vmPath(vmId, '/forwards'), body), 'forward'),
  remove: (vmId: string, forwardId: string): Promise<unknown> => request<unknown>('DELETE', vmPath(vmId, `/forwards/${enc(forwardId)}`)),
};

export const hostApi = {
  metrics: (signal?: AbortSignal): Promise<HostMetrics> => request<HostMetrics>('GET', '/host/metrics', undefined, { signal }),
  summary: (signal?: AbortSignal): Promise<MetricsSummary> => request<MetricsSummary>('GET', '/metrics/summary', undefined, { signal }),
};

export const networkKeys = {
  networks: ['networks'] as const,
  forwards: (vmId: string) => ['forwards', vmId] as const,
  host: ['metrics', 'host'] as const,
  summary: ['metrics', 'summary'] as const,
};
