import { t } from '../i18n';
import { ErrorText } from './ErrorText';

interface Props {
  /** The list could not be loaded: say so, with a retry. */
  failed: boolean;
  loading: boolean;
  error: unknown;
  failedText: string;
  retry: () => unknown;
  testId: string;
}

/** The loading line or the load error (with Retry) above a list page's table. */
export function ListStatus({ failed, loading, error, failedText, retry, testId }: Props) {
  return (
    <>
      {failed && (
        <ErrorText error={`${failedText} ${(error as Error | null)?.message ?? ''}`} testId={testId}>
          <button type="button" className="link-button" onClick={() => void retry()}>{t.common.retry}</button>
        </ErrorText>
      )}
      {loading && <p className="muted">{t.app.loading}</p>}
    </>
  );
}
