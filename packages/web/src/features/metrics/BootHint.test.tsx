// The stuck-boot hint (issue 14) in the VM list (server-side rendering, no DOM needed).
import { describe, expect, it } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { qk } from '../../api/queries';
import { vm } from '../../test/fixtures';
import { en } from '../../i18n/en';
import { VmListPage } from '../vms/VmListPage';

function renderList(vms: Vm[]): string {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  qc.setQueryData(qk.vms, vms);
  qc.setQueryData(qk.isos, []);
  qc.setQueryData(qk.auth, { authRequired: false, authenticated: true, scope: 'admin', actor: 'local' });
  return renderToStaticMarkup(<QueryClientProvider client={qc}><VmListPage /></QueryClientProvider>);
}

describe('stuck-boot hint badge', () => {
  it('shows each kind on its running VM, and nothing on a VM without a hint or a stopped one', () => {
    const since = '2026-01-01T00:00:00.000Z';
    const html = renderList([
      vm({ id: 'a', name: 'empty', status: 'running', hint: { kind: 'no-boot-device', since } }),
      vm({ id: 'b', name: 'menu', status: 'running', hint: { kind: 'idle-screen', since } }),
      vm({ id: 'c', name: 'fine', status: 'running', hint: null }),
      vm({ id: 'd', name: 'off', status: 'stopped', hint: { kind: 'idle-screen', since } }),
    ]);
    expect(html).toContain('data-testid="vm-hint-empty"');
    expect(html).toContain(en.metrics.hint['no-boot-device'].label);
    expect(html).toContain('data-testid="vm-hint-menu"');
    expect(html).toContain(en.metrics.hint['idle-screen'].label);
    expect(html).not.toContain('vm-hint-fine');
    expect(html).not.toContain('vm-hint-off');
  });
});
