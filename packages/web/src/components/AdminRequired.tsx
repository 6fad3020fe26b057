import { ApiError, errorMessage } from '../api/client';
import { useAuthStatus } from '../api/queries';
import { t } from '../i18n';
import { ErrorText } from './ErrorText';

export const isForbidden = (err: unknown): boolean => err instanceof ApiError && err.status === 403;

/** True for a read-scope token holder: admin-only pages then load nothing. */
export function useReadOnlyAccess(): boolean {
  return useAuthStatus().data?.scope === 'read';
}

/** Says why an admin-only page shows nothing: read-only access, or the server answered 403. */
export function AdminRequired({ error, readOnly }: { error: unknown; readOnly: boolean }) {
  if (readOnly) return <p className="locked-reason" data-testid="admin-required">{t.admin.readScope}</p>;
  if (isForbidden(error)) return <ErrorText error={t.admin.forbidden(errorMessage(error))} testId="admin-required" />;
  return null;
}
