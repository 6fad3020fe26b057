// Rules of the VM page's Autostart editor: the same limits as the server's schema (PUT /api/vms/{id}/autostart).
import { VmAutostart } from '@qemu-manager/contract';
import { inRange, parseIntStrict } from '../../lib/validation';

export const AUTOSTART_MAX_ORDER: number = VmAutostart.properties.order.maximum ?? 10000;
export const AUTOSTART_MAX_DELAY_S: number = VmAutostart.properties.delayS.maximum ?? 3600;

/** What the form holds: the checkbox and the two fields' text as typed. */
export interface AutostartDraft {
  enabled: boolean;
  order: string;
  delayS: string;
}

export interface AutostartCheck {
  /** The body to send, or null while a field is wrong. */
  body: VmAutostart | null;
  orderError: 'order' | null;
  delayError: 'delay' | null;
  /** Whether the draft differs from the saved setting (nothing to save otherwise). */
  dirty: boolean;
}

export const draftOf = (a: VmAutostart): AutostartDraft => ({ enabled: a.enabled, order: String(a.order), delayS: String(a.delayS) });

export function checkAutostart(draft: AutostartDraft, saved: VmAutostart): AutostartCheck {
  const order = parseIntStrict(draft.order);
  const delayS = parseIntStrict(draft.delayS);
  const orderError = inRange(order, 0, AUTOSTART_MAX_ORDER) ? null : 'order';
  const delayError = inRange(delayS, 0, AUTOSTART_MAX_DELAY_S) ? null : 'delay';
  const body = orderError || delayError ? null : { enabled: draft.enabled, order: order!, delayS: delayS! };
  const dirty = draft.enabled !== saved.enabled || draft.order.trim() !== String(saved.order) || draft.delayS.trim() !== String(saved.delayS);
  return { body, orderError, delayError, dirty };
}

/** The list's marker text input: null when the VM does not start by itself. */
export const autostartMarker = (a: VmAutostart): { order: number; delayS: number } | null =>
  a.enabled ? { order: a.order, delayS: a.delayS } : null;
