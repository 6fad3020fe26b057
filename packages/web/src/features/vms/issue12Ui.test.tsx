// Server-side rendering of the issue 12 parts (no DOM needed), and the requests they make with a fake fetch.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { renderToStaticMarkup } from 'react-dom/server';
import { QueryClient, QueryClientProvider } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { cloudInitApi, imagesApi, vmsApi } from '../../api/endpoints';
import { qk } from '../../api/queries';
import { task, vm } from '../../test/fixtures';
import { HardwareFields } from './HardwareFields';
import { HardwareSection } from './HardwareSection';
import { VmListPage } from './VmListPage';
import { VmActions } from './VmActions';
import { cloudInitBody, draftOfCloudInit } from './cloudInitForm';
import { presetFor } from './hardwareRules';

function render(node: React.ReactNode, vms: Vm[] = []): string {
  const qc = new QueryClient({ defaultOptions: { queries: { staleTime: Infinity } } });
  qc.setQueryData(qk.vms, vms);
  qc.setQueryData(qk.isos, []);
  qc.setQueryData(qk.auth, { authRequired: false, authenticated: true, scope: 'admin', actor: 'local' });
  return renderToStaticMarkup(<QueryClientProvider client={qc}>{node}</QueryClientProvider>);
}

/** The markup of the element with this test id (up to the end of its own tag). */
const tag = (html: string, testId: string): string => {
  const at = html.indexOf(`data-testid="${testId}"`);
  expect(at, testId).toBeGreaterThan(-1);
  return html.slice(html.lastIndexOf('<', at), html.indexOf('>', at) + 1);
};

describe('Hardware section', () => {
  it('a stopped VM offers Edit and shows every field with the summary', () => {
    const html = render(<HardwareSection vm={vm({ firmware: 'uefi', secureBoot: true, tpm: true, bootOrder: ['cdrom', 'disk'] })} />);
    expect(tag(html, 'hw-edit')).not.toContain('disabled');
    expect(html).toContain('UEFI · Secure Boot · TPM 2.0');
    expect(html).toMatch(/data-testid="hw-boot-value">CD\/DVD → Disk</);
    expect(html).not.toContain('hw-locked');
  });
  it('a running VM has Edit disabled, with the reason in words', () => {
    const html = render(<HardwareSection vm={vm({ status: 'running' })} />);
    expect(tag(html, 'hw-edit')).toContain('disabled');
    expect(html).toContain('Stop the machine to change its hardware.');
  });
});

describe('Hardware fields', () => {
  it('the windows preset shows its values; Secure Boot can not be ticked on pc', () => {
    const html = render(<HardwareFields draft={presetFor('windows')} onChange={() => {}} isos={[]} withPreset testId="x" />);
    expect(tag(html, 'x-secure-boot')).toContain('checked');
    expect(tag(html, 'x-tpm')).toContain('checked');
    const pc = render(<HardwareFields draft={{ ...presetFor('windows'), machine: 'pc', secureBoot: false }} onChange={() => {}} isos={[]} testId="x" />);
    expect(tag(pc, 'x-secure-boot')).toContain('disabled');
    expect(pc).toContain('Secure Boot needs UEFI firmware and the q35 machine.');
    // The first boot device cannot move up, the last not down.
    expect(tag(html, 'x-boot-disk-up')).toContain('disabled');
    expect(tag(html, 'x-boot-network-down')).toContain('disabled');
    expect(tag(html, 'x-boot-cdrom-up')).not.toContain('disabled');
  });
});

describe('VM list and actions', () => {
  it('the list row shows the summary line and a template’s marker', () => {
    const html = render(<VmListPage />, [vm({ name: 'win', firmware: 'uefi', tpm: true }), vm({ id: 'b', name: 'plain' }), vm({ id: 'c', name: 'tpl', template: true })]);
    expect(html).toContain('data-testid="vm-hw-win">UEFI · TPM 2.0<');
    expect(html).not.toContain('vm-hw-plain');
    expect(html).toContain('data-testid="vm-hw-tpl">Template<');
  });
  it('a template offers “New VM from template” instead of Start', () => {
    const html = render(<VmActions vm={vm({ template: true })} context="page" />);
    expect(html).toContain('data-testid="action-new-from-template"');
    expect(html).not.toContain('data-testid="action-start"');
    expect(render(<VmActions vm={vm()} context="page" />)).toContain('data-testid="action-start"');
  });
});

describe('requests (fake fetch)', () => {
  afterEach(() => vi.unstubAllGlobals());
  function fakeFetch(status: number, body: unknown) {
    const calls: { url: string; method: string; body: unknown }[] = [];
    vi.stubGlobal('fetch', vi.fn(async (url: string, init: RequestInit) => {
      calls.push({ url, method: init.method ?? 'GET', body: init.body ? JSON.parse(init.body as string) : undefined });
      return new Response(JSON.stringify(body), { status });
    }));
    return calls;
  }

  it('hardware: PUT /api/vms/{id}/hardware with only the change', async () => {
    const calls = fakeFetch(200, { vm: vm({ firmware: 'uefi', tpm: true }) });
    const updated = await vmsApi.setHardware('v1', { firmware: 'uefi', tpm: true });
    expect(updated.firmware).toBe('uefi');
    expect(calls).toEqual([{ url: '/api/vms/v1/hardware', method: 'PUT', body: { firmware: 'uefi', tpm: true } }]);
  });

  it('cloud-init: PUT with the form’s body (no password: the stored one stays), DELETE to remove', async () => {
    const calls = fakeFetch(200, { cloudInit: { hostname: 'h', user: null, password: '********', sshAuthorizedKeys: [], userData: null, networkConfig: null, instanceId: 'i', updatedAt: 'x' } });
    const d = draftOfCloudInit({ hostname: 'old', user: null, password: '********', sshAuthorizedKeys: [], userData: null, networkConfig: null, instanceId: 'i', updatedAt: 'x' });
    const saved = await cloudInitApi.put('v1', cloudInitBody({ ...d, hostname: 'h' }));
    expect(saved.password).toBe('********');
    expect(calls[0]).toEqual({ url: '/api/vms/v1/cloud-init', method: 'PUT', body: { hostname: 'h' } });
    await cloudInitApi.remove('v1');
    expect(calls[1]).toMatchObject({ url: '/api/vms/v1/cloud-init', method: 'DELETE' });
  });

  it('a create from an image answers with a task; a refusal keeps the server’s words (the YAML line)', async () => {
    let calls = fakeFetch(202, { task: task({ kind: 'vm.create' }) });
    const started = await vmsApi.createFrom({ name: 'a', cpus: 1, memory: 256, image: 'img' });
    expect(started.kind).toBe('vm.create');
    expect(calls[0]).toMatchObject({ url: '/api/vms', method: 'POST', body: { image: 'img' } });
    calls = fakeFetch(400, { error: 'cloudInit.userData: invalid YAML at line 2', code: 'VALIDATION', timestamp: 'x' });
    await expect(vmsApi.createFrom({ name: 'a', template: 't' })).rejects.toMatchObject({ status: 400, message: 'cloudInit.userData: invalid YAML at line 2' });
    calls = fakeFetch(202, { task: task({ kind: 'image.download' }) });
    await imagesApi.download({ name: 'debian-12', url: 'https://x/d.qcow2', checksumUrl: 'https://x/SHA512SUMS' });
    expect(calls[0]).toMatchObject({ url: '/api/images', method: 'POST', body: { name: 'debian-12', checksumUrl: 'https://x/SHA512SUMS' } });
  });
});
