// Which actions fit which VM state. Pure predicates, one per action (cockpit-machines style),
// so the UI offers only what the server will accept. The server is still the authority:
// a 409 from it is shown next to the action.
import type { VmStatus } from '@qemu-manager/contract';

export const canStart = (s: VmStatus): boolean => s === 'stopped';
/** Power off (v1 "stop"): pulls the plug. */
export const canStop = (s: VmStatus): boolean => s === 'running' || s === 'paused';
/** ACPI power button: needs a running guest to react. */
export const canShutdown = (s: VmStatus): boolean => s === 'running';
export const canReboot = (s: VmStatus): boolean => s === 'running';
export const canReset = (s: VmStatus): boolean => s === 'running' || s === 'paused';
export const canPause = (s: VmStatus): boolean => s === 'running';
export const canResume = (s: VmStatus): boolean => s === 'paused';
export const canOpenConsole = (s: VmStatus): boolean => s === 'running' || s === 'paused';
export const canEditResources = (s: VmStatus): boolean => s === 'stopped';
export const canAttachDisk = (s: VmStatus): boolean => s === 'stopped';
export const canDetachDisk = (s: VmStatus): boolean => s === 'stopped';
/** ISO insert/eject works live over QMP, but not while the VM is between states. */
export const canChangeIso = (s: VmStatus): boolean => !isTransitional(s);
export const canDelete = (s: VmStatus): boolean => s === 'stopped';

export const isTransitional = (s: VmStatus): boolean => s === 'starting' || s === 'stopping';

export type PowerAction = 'start' | 'stop' | 'shutdown' | 'reboot' | 'reset' | 'pause' | 'resume';

const POWER_PREDICATES: Record<PowerAction, (s: VmStatus) => boolean> = {
  start: canStart,
  stop: canStop,
  shutdown: canShutdown,
  reboot: canReboot,
  reset: canReset,
  pause: canPause,
  resume: canResume,
};

/** The power actions that fit this state, in the order the UI shows them. */
export function powerActionsFor(s: VmStatus): PowerAction[] {
  return (Object.keys(POWER_PREDICATES) as PowerAction[]).filter((a) => POWER_PREDICATES[a](s));
}

/** The one action a row shows as its main button; the rest go to the overflow menu. */
export function primaryActionFor(s: VmStatus): PowerAction | null {
  if (canStart(s)) return 'start';
  if (canResume(s)) return 'resume';
  if (canShutdown(s)) return 'shutdown';
  return null;
}
