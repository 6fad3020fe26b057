// Networks (issue 11): every network with its bridge, subnet, DHCP range, machines and leases;
// create (admin) and delete (admin, refused with NETWORK_IN_USE while a machine uses it).
import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Network, Vm } from '@qemu-manager/contract';
import { networkKeys, networksApi } from '../../api/networks';
import { useVms } from '../../api/queries';
import { useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ListStatus } from '../../components/ListStatus';
import { PageHeader } from '../../components/PageHeader';
import { t } from '../../i18n';
import { formatDateTime } from '../../lib/format';
import { useTitle } from '../../lib/useTitle';
import { Link, paths } from '../../router';
import { CreateNetworkDialog } from './CreateNetworkDialog';
import { useNetworks } from './useNetworks';
import './networks.css';

export default function NetworksPage() {
  const w = t.networks;
  useTitle(w.title);
  const list = useNetworks({ poll: true });
  const vms = useVms();
  const readOnly = useReadOnlyAccess();
  const [creating, setCreating] = useState(false);
  const managed = list.data?.managed;
  const names = new Map((vms.data ?? []).map((v: Vm) => [v.id, v.name]));
  return (
    <section className="page" data-testid="networks-page">
      <PageHeader
        title={w.title}
        intro={w.intro}
        action={
          managed?.available && !readOnly ? (
            <Button variant="primary" onClick={() => setCreating(true)} data-testid="create-network-open">{w.create}</Button>
          ) : undefined
        }
      />
      <ListStatus failed={list.isError} loading={list.isPending} error={list.error} failedText={w.loadFailed} retry={list.refetch} testId="networks-error" />
      {managed && !managed.available && (
        <p className="note" data-testid="networks-unavailable">{managed.reason ? w.unavailable(managed.reason) : w.unavailableNoReason}</p>
      )}
      <div className="net-cards">
        {list.data?.networks.map((n) => <NetworkCard key={n.id} net={n} names={names} canDelete={!readOnly && n.type !== 'user'} />)}
      </div>
      <CreateNetworkDialog open={creating} onClose={() => setCreating(false)} />
    </section>
  );
}

function NetworkCard({ net, names, canDelete }: { net: Network; names: Map<string, string>; canDelete: boolean }) {
  const w = t.networks;
  const qc = useQueryClient();
  const [confirm, setConfirm] = useState(false);
  const none = t.common.none;
  return (
    <article className="card" data-testid={`network-${net.name}`} data-type={net.type} aria-labelledby={`network-title-${net.id}`}>
      <div className="card-header">
        <h2 id={`network-title-${net.id}`}>
          {net.name} <span className="badge">{w.types[net.type]}</span>
          {net.type === 'user' && <span className="muted small"> · {w.builtIn}</span>}
        </h2>
        {canDelete && (
          <div className="card-actions">
            <Button size="sm" variant="danger" onClick={() => setConfirm(true)} data-testid={`network-delete-${net.name}`}>{w.remove}</Button>
          </div>
        )}
      </div>
      <dl className="props">
        <dt>{w.columns.bridge}</dt>
        <dd className="mono" data-testid="network-bridge">{net.bridge ?? none}</dd>
        <dt>{w.columns.subnet}</dt>
        <dd className="mono" data-testid="network-subnet">{net.subnet ?? none}</dd>
        <dt>{w.columns.gateway}</dt>
        <dd className="mono">{net.gateway ?? none}</dd>
        <dt>{w.columns.dhcp}</dt>
        <dd className="mono" data-testid="network-dhcp">{net.dhcp ? `${net.dhcp.start} – ${net.dhcp.end}` : w.noDhcp}</dd>
        <dt>{w.columns.vms}</dt>
        <dd data-testid="network-vms" data-count={net.vms.length}>
          {net.vms.length === 0
            ? w.noVms
            : net.vms.map((id, i) => (
                <span key={id}>
                  {i > 0 && ', '}
                  <Link to={paths.vm(id)}>{names.get(id) ?? id.slice(0, 8)}</Link>
                </span>
              ))}
        </dd>
      </dl>
      {(net.type === 'nat' || net.type === 'isolated') && (
        <>
          <h3 className="small">{w.leases}</h3>
          {net.leases.length === 0 ? (
            <p className="muted small" data-testid="network-no-leases">{w.noLeases}</p>
          ) : (
            <div className="net-table-wrap">
              <table className="net-table" data-testid="network-leases">
                <thead>
                  <tr>
                    <th scope="col">{w.leaseColumns.mac}</th>
                    <th scope="col">{w.leaseColumns.ip}</th>
                    <th scope="col">{w.leaseColumns.hostname}</th>
                    <th scope="col">{w.leaseColumns.expires}</th>
                  </tr>
                </thead>
                <tbody>
                  {net.leases.map((l) => (
                    <tr key={`${l.mac}-${l.ip}`}>
                      <td className="mono">{l.mac}</td>
                      <td className="mono">{l.ip}</td>
                      <td>{l.hostname ?? none}</td>
                      <td>{l.expiresAt ? <time dateTime={l.expiresAt}>{formatDateTime(l.expiresAt)}</time> : w.leaseNever}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
        </>
      )}
      <ConfirmDialog
        open={confirm}
        title={w.removeTitle}
        body={w.removeConfirm(net.name)}
        confirmLabel={w.remove}
        danger
        testId="delete-network"
        onConfirm={async () => {
          await networksApi.remove(net.id);
          await qc.invalidateQueries({ queryKey: networkKeys.networks });
        }}
        onClose={() => setConfirm(false)}
      />
    </article>
  );
}
