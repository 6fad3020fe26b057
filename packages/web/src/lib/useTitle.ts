import { useEffect } from 'react';
import { t } from '../i18n';

/** Sets the browser tab's title while the page is shown. */
export function useTitle(page: string | undefined): void {
  useEffect(() => {
    document.title = page ? t.app.pageTitle(page) : t.app.name;
  }, [page]);
}
