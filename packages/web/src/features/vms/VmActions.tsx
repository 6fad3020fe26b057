import { useState } from 'react';
import { useQueryClient } from '@tanstack/react-query';
import type { Vm } from '@qemu-manager/contract';
import { vmsApi } from '../../api/endpoints';
import { qk, removeVm, upsertVm } from '../../api/queries';
import { Button } from '../../components/Button';
import { ConfirmDialog } from '../../components/ConfirmDialog';
import { ErrorText } from '../../components/ErrorText';
import { Menu, type MenuItem } from '../../components/Menu';
import { t } from '../../i18n';
import { Link, navigate, paths } from '../../router';
import { canDelete, canOpenConsole, canStop, powerActionsFor, primaryActionFor, type PowerAction } from './actions';
import { useVmAction } from './useVmAction';
import { CreateVmDialog } from './CreateVmDialog';

/** Read while rendering, so a language switch shows at once. */
const label = (a: PowerAction): string => t.actions[a];

interface Props {
  vm: Vm;
  /** 'row' adds a Settings (⚙️) button; 'page' names the console button "Open VNC console" and navigates to the list after deletion. */
  context: 'row' | 'page';
}

/** The buttons that fit a VM's state, and the error of the last one next to them. */
export function VmActions({ vm, context }: Props) {
  const qc = useQueryClient();
  const action = useVmAction(vm.id);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [confirmTemplate, setConfirmTemplate] = useState(false);
  const [fromTemplate, setFromTemplate] = useState(false);
  // A template cannot start (issue 12): its main button makes a new VM from it instead.
  const primary = vm.template ? null : primaryActionFor(vm.status);
  const others = powerActionsFor(vm.status).filter((a) => a !== primary);

  const items: MenuItem[] = others.map((a) => ({
    key: a,
    label: label(a),
    onSelect: () => action.run(a),
    danger: a === 'stop' || a === 'reset',
    testId: `action-${a}`,
  }));
  if (!vm.template && vm.status === 'stopped') items.push({ key: 'template', label: t.template.make, onSelect: () => setConfirmTemplate(true), testId: 'action-make-template' });
  if (canDelete(vm.status)) items.push({ key: 'delete', label: t.actions.delete, onSelect: () => setConfirmDelete(true), danger: true, testId: 'action-delete' });

  const timedOut = action.failed === 'shutdown' && (action.error as { code?: string } | null)?.code === 'TIMEOUT';
  return (
    <div className="vm-actions">
      <div className="vm-actions-buttons">
        {primary && (
          <Button
            size="sm"
            variant={primary === 'start' || primary === 'resume' ? 'primary' : 'secondary'}
            busy={action.pending === primary}
            disabled={action.pending !== undefined}
            onClick={() => action.run(primary)}
            data-testid={`action-${primary}`}
          >
            {label(primary)}
          </Button>
        )}
        {vm.template && (
          <Button size="sm" variant="primary" onClick={() => setFromTemplate(true)} data-testid="action-new-from-template">{t.template.newVm}</Button>
        )}
        {!primary && action.pending && (
          <Button size="sm" busy>
            {label(action.pending)}
          </Button>
        )}
        {canOpenConsole(vm.status) && (
          <Link to={paths.console(vm.id)} className="btn btn-secondary btn-sm" data-testid="action-console">
            {context === 'page' ? t.detail.openVnc : t.actions.console}
          </Link>
        )}
        {context === 'row' && (
          <Link to={paths.vm(vm.id)} className="btn btn-ghost btn-sm" title={t.actions.settings} data-testid="action-settings">
            <span aria-hidden="true">⚙️</span> {t.actions.settings}
          </Link>
        )}
        <Menu label="⋯" ariaLabel={t.common.more} items={action.pending ? [] : items} testId="action-menu" />
      </div>
      {action.error != null && action.failed && (
        <ErrorText
          className="vm-action-error"
          testId={`vm-error-${vm.name}`}
          error={timedOut ? t.actions.shutdownTimeout : t.actions.failed(label(action.failed), (action.error).message)}
          onDismiss={action.reset}
        >
          {timedOut && canStop(vm.status) && (
            <button type="button" className="link-button" onClick={() => action.run('stop')} data-testid="action-poweroff-now">
              {t.actions.powerOffInstead}
            </button>
          )}
        </ErrorText>
      )}
      {fromTemplate && <CreateVmDialog open template={vm.id} onClose={() => setFromTemplate(false)} />}
      <ConfirmDialog
        open={confirmTemplate}
        title={t.template.makeTitle(vm.name)}
        body={<p>{t.template.makeBody}</p>}
        confirmLabel={t.template.makeConfirm}
        testId="make-template-dialog"
        onClose={() => setConfirmTemplate(false)}
        onConfirm={async () => {
          const updated = await vmsApi.makeTemplate(vm.id);
          if (updated) upsertVm(qc, updated);
          else await qc.invalidateQueries({ queryKey: qk.vms });
        }}
      />
      <ConfirmDialog
        open={confirmDelete}
        title={t.vms.deleteTitle(vm.name)}
        body={<p>{t.vms.deleteBody}</p>}
        confirmLabel={t.vms.deleteConfirm}
        danger
        testId="delete-vm-dialog"
        onClose={() => setConfirmDelete(false)}
        onConfirm={async () => {
          await vmsApi.remove(vm.id);
          if (context === 'page') navigate(paths.vms, { replace: true });
          removeVm(qc, vm.id);
        }}
      />
    </div>
  );
}
