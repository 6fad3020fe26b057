// Networks (issue 11): the VM page's Network section — NICs (add, change, remove; hot-plugged on
// a running VM), port forwards (add, remove; a ready ssh line for TCP to guest port 22) and the
// addresses the server knows, each with a copy button. The NICs and addresses come with the VM
// (kept live by its events); the forwards are reloaded on this VM's events.
import { useEffect, useState } from 'react';
import { useQuery, useQueryClient } from '@tanstack/react-query';
import type { Forward, Network, Nic, Vm } from '@qemu-manager/contract';
import { onServerEvent } from '../../api/events';
import { forwardsApi, networkKeys, nicsApi } from '../../api/networks';
import { qk, useAuthStatus } from '../../api/queries';
import { useReadOnlyAccess } from '../../components/AdminRequired';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { CopyButton } from '../../components/CopyButton';
import { ErrorText } from '../../components/ErrorText';
import { t } from '../../i18n';
import { ForwardDialog } from './ForwardDialog';
import { NicDialog } from './NicDialog';
import { sshCommand } from './networkRules';
import { useNetworks } from './useNetworks';
import './networks.css';

const USER_NETWORK: Network = { id: 'user', name: 'user', type: 'user', bridge: null, subnet: '10.0.2.0/24', gateway: '10.0.2.2', dhcp: null, leases: [], vms: [], createdAt: null };

const pageHost = () => (typeof location === 'undefined' ? '' : location.hostname);

export function VmNetworkSection({ vm }: { vm: Vm }) {
  const w = t.networks;
  const qc = useQueryClient();
  const readOnly = useReadOnlyAccess();
  const auth = useAuthStatus();
  const nets = useNetworks();
  const forwards = useQuery({ queryKey: networkKeys.forwards(vm.id), queryFn: ({ signal }) => forwardsApi.list(vm.id, signal) });
  useEffect(
    () =>
      onServerEvent((ev) => {
        if ((ev.type === 'vm.updated' && ev.vm.id === vm.id) || (ev.type === 'vm.deleted' && ev.id === vm.id)) {
          void qc.invalidateQueries({ queryKey: networkKeys.forwards(vm.id) });
        }
      }),
    [qc, vm.id],
  );
  const [nicDialog, setNicDialog] = useState<{ nic: Nic | null } | null>(null);
  const [removingNic, setRemovingNic] = useState<Nic | null>(null);
  const [addingForward, setAddingForward] = useState(false);
  const [removingForward, setRemovingForward] = useState<Forward | null>(null);
  const [sshUser, setSshUser] = useState('');
  const all = nets.data?.networks ?? [USER_NETWORK];
  // Without managed networks only `user` is offered for a new or changed NIC.
  const offered = nets.data && !nets.data.managed.available ? all.filter((n) => n.type === 'user') : all;
  const netName = (id: string) => all.find((n) => n.id === id || n.name === id)?.name ?? id;
  const nicOf = (id: string | null) => vm.nics.find((n) => n.id === id);
  const fwdText = (f: Forward) => `${f.protocol.toUpperCase()} ${f.hostAddress}:${f.hostPort} → ${f.guestPort}`;
  const refresh = async () => {
    await qc.invalidateQueries({ queryKey: qk.vm(vm.id), exact: true });
    void qc.invalidateQueries({ queryKey: networkKeys.networks });
    void qc.invalidateQueries({ queryKey: networkKeys.forwards(vm.id) });
  };
  const sshLines = (forwards.data ?? []).map((f) => ({ f, line: sshCommand(f, pageHost(), sshUser) })).filter((x) => x.line);
  return (
    <section className="card" data-testid="vm-network" aria-labelledby="vm-network-title">
      <h2 id="vm-network-title">{w.section}</h2>

      <div className="card-header">
        <h3 className="small">{w.nics}</h3>
        {!readOnly && (
          <Button size="sm" onClick={() => setNicDialog({ nic: null })} disabled={vm.nics.length >= 8} data-testid="nic-add-open">{w.addNic}</Button>
        )}
      </div>
      {vm.nics.length === 0 ? (
        <p className="muted small" data-testid="nics-empty">{w.noNics}</p>
      ) : (
        <div className="net-table-wrap">
          <table className="net-table" data-testid="vm-nics">
            <thead>
              <tr>
                <th scope="col">{w.nicColumns.network}</th>
                <th scope="col">{w.nicColumns.model}</th>
                <th scope="col">{w.nicColumns.mac}</th>
                <th scope="col">{w.nicColumns.ip}</th>
                {!readOnly && <th scope="col"><span className="sr-only">{t.vms.columns.actions}</span></th>}
              </tr>
            </thead>
            <tbody>
              {vm.nics.map((n) => (
                <tr key={n.id} data-testid={`vm-nic-${n.slot}`} data-network={n.network}>
                  <td data-testid="nic-network">{netName(n.network)}</td>
                  <td data-testid="nic-model">{n.model}</td>
                  <td className="mono" data-testid="nic-mac">{n.mac}</td>
                  <td className="mono">{n.ip ?? t.common.none}</td>
                  {!readOnly && (
                    <td className="actions">
                      <Button size="sm" variant="ghost" onClick={() => setNicDialog({ nic: n })} data-testid={`nic-edit-${n.slot}`}>{w.editNic}</Button>
                      <Button size="sm" variant="ghost" onClick={() => setRemovingNic(n)} data-testid={`nic-remove-${n.slot}`}>{w.removeNic}</Button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}

      <div className="card-header">
        <h3 className="small">{w.forwards}</h3>
        {!readOnly && (
          <Button size="sm" onClick={() => setAddingForward(true)} disabled={vm.nics.length === 0} data-testid="forward-add-open">{w.addForward}</Button>
        )}
      </div>
      {forwards.isError && <ErrorText error={`${w.loadForwardsFailed} ${forwards.error.message}`} testId="forwards-error" />}
      {forwards.data && forwards.data.length === 0 && <p className="muted small" data-testid="forwards-empty">{w.noForwards}</p>}
      {forwards.data && forwards.data.length > 0 && (
        <div className="net-table-wrap">
          <table className="net-table" data-testid="vm-forwards">
            <thead>
              <tr>
                <th scope="col">{w.forwardColumns.protocol}</th>
                <th scope="col">{w.forwardColumns.host}</th>
                <th scope="col">{w.forwardColumns.guest}</th>
                <th scope="col">{w.nicColumns.mac}</th>
                {!readOnly && <th scope="col"><span className="sr-only">{t.vms.columns.actions}</span></th>}
              </tr>
            </thead>
            <tbody>
              {forwards.data.map((f) => (
                <tr key={f.id} data-testid={`vm-forward-${f.protocol}-${f.hostPort}`}>
                  <td>{f.protocol.toUpperCase()}</td>
                  <td className="mono">{`${f.hostAddress}:${f.hostPort}`}</td>
                  <td className="mono">→ {f.guestPort}</td>
                  <td className="mono">{nicOf(f.nic)?.mac ?? t.common.none}</td>
                  {!readOnly && (
                    <td className="actions">
                      <Button size="sm" variant="ghost" onClick={() => setRemovingForward(f)} data-testid={`forward-remove-${f.protocol}-${f.hostPort}`}>{w.removeForward}</Button>
                    </td>
                  )}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {sshLines.length > 0 && (
        <div data-testid="vm-ssh">
          <label className="net-inline-field">
            {w.sshUser}
            <input value={sshUser} onChange={(e) => setSshUser(e.target.value)} maxLength={32} autoComplete="off" spellCheck={false} placeholder="root" data-testid="ssh-user" />
          </label>
          {sshLines.map(({ f, line }) => (
            <div key={f.id} className="net-ssh">
              <span className="small muted">{w.ssh}</span>
              <code data-testid={`ssh-line-${f.hostPort}`}>{line}</code>
              <CopyButton text={line!} testId={`ssh-copy-${f.hostPort}`} />
            </div>
          ))}
        </div>
      )}

      <h3 className="small">{w.addresses}</h3>
      {vm.addresses.length === 0 ? (
        <p className="muted small" data-testid="addresses-empty">{w.noAddresses}</p>
      ) : (
        <ul className="small" style={{ listStyle: 'none', padding: 0, margin: 0 }} data-testid="vm-addresses">
          {vm.addresses.map((a, i) => (
            <li key={`${a.ip}-${i}`} className="net-ssh" data-testid="vm-address" data-source={a.source}>
              <code>{a.ip}</code>
              <span className="muted">{w.sources[a.source]}{a.mac ? ` · ${a.mac}` : ''}</span>
              <CopyButton text={a.ip} testId={`address-copy-${i}`} />
            </li>
          ))}
        </ul>
      )}

      {nicDialog && <NicDialog vm={vm} nic={nicDialog.nic} networks={offered.some((n) => n.id === nicDialog.nic?.network) || !nicDialog.nic ? offered : all} onClose={() => setNicDialog(null)} />}
      {addingForward && <ForwardDialog vm={vm} networks={all} allowAllAddresses={!!auth.data?.authRequired} onClose={() => setAddingForward(false)} />}
      <ConfirmDialog
        open={!!removingNic}
        title={w.removeNicTitle}
        body={removingNic ? w.removeNicConfirm(removingNic.mac) : ''}
        confirmLabel={w.removeNic}
        danger
        testId="remove-nic"
        onConfirm={async () => {
          if (removingNic) await nicsApi.remove(vm.id, removingNic.id);
          await refresh();
        }}
        onClose={() => setRemovingNic(null)}
      />
      <ConfirmDialog
        open={!!removingForward}
        title={w.removeForwardTitle}
        body={removingForward ? w.removeForwardConfirm(fwdText(removingForward)) : ''}
        confirmLabel={w.removeForward}
        danger
        testId="remove-forward"
        onConfirm={async () => {
          if (removingForward) await forwardsApi.remove(vm.id, removingForward.id);
          await qc.invalidateQueries({ queryKey: networkKeys.forwards(vm.id) });
        }}
        onClose={() => setRemovingForward(null)}
      />
    </section>
  );
}
