import { useInfiniteQuery } from '@tanstack/react-query';
import { auditApi } from '../../api/endpoints';
import { qk } from '../../api/queries';
import { AUDIT_PAGE_SIZE, olderCursor } from './auditWords';

/** Polling interval while the page is shown (paused by TanStack Query while the tab is hidden). */
export const AUDIT_POLL_MS = 10_000;

/**
 * The audit log, newest page first; fetchNextPage loads older entries. Not every audited request
 * sends a server event (logins, tokens), so the log polls while its page is mounted and visible.
 */
export function useAuditLog(enabled: boolean) {
  return useInfiniteQuery({
    queryKey: qk.audit,
    queryFn: ({ pageParam, signal }) => auditApi.list({ limit: AUDIT_PAGE_SIZE, before: pageParam }, signal),
    initialPageParam: undefined as number | undefined,
    getNextPageParam: (last) => olderCursor(last),
    refetchInterval: AUDIT_POLL_MS,
    enabled,
  });
}
