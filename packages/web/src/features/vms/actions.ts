// Which actions fit which VM state: thin wrappers over the VM state table of the contract (the
// table the server's 409 checks read), so the UI offers only what the server will accept. Where
// the table says the UI offers less than the server accepts (ACPI buttons of a paused guest, a
// power-off of a VM between states), the UI follows the table. The server is still the authority:
// a 409 from it is shown next to the action.
import { vmActionOffered, type VmAction, type VmStatus } from '@qemu-manager/contract';

const offered = (action: VmAction) => (s: VmStatus): boolean => vmActionOffered(s, action);

export const canStart = offered('start');
/** Power off (v1 "stop"): pulls the plug. */
export const canStop = offered('stop');
/** ACPI power button: needs a running guest to react. */
export const canShutdown = offered('shutdown');
export const canReboot = offered('reboot');
export const canReset = offered('reset');
export const canPause = offered('pause');
export const canResume = offered('resume');
export const canOpenConsole = offered('console');
export const canEditResources = offered('configure');
export const canAttachDisk = offered('attachDisk');
export const canDetachDisk = offered('detachDisk');
/** ISO insert/eject works live over QMP, but not while the VM is between states. */
export const canChangeIso = (s: VmStatus): boolean => vmActionOffered(s, 'mountIso') && vmActionOffered(s, 'unmountIso');
export const canDelete = offered('delete');

export const isTransitional = (s: VmStatus): boolean => s === 'starting' || s === 'stopping';

export type PowerAction = 'start' | 'stop' | 'shutdown' | 'reboot' | 'reset' | 'pause' | 'resume';

/** The power actions in the order the UI shows them. */
const POWER_ACTIONS: readonly PowerAction[] = ['start', 'stop', 'shutdown', 'reboot', 'reset', 'pause', 'resume'];

/** The power actions that fit this state, in the order the UI shows them. */
export function powerActionsFor(s: VmStatus): PowerAction[] {
  return POWER_ACTIONS.filter((a) => vmActionOffered(s, a));
}

/** The one action a row shows as its main button; the rest go to the overflow menu. */
export function primaryActionFor(s: VmStatus): PowerAction | null {
  if (canStart(s)) return 'start';
  if (canResume(s)) return 'resume';
  if (canShutdown(s)) return 'shutdown';
  return null;
}
