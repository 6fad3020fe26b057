import type { HardwareBody, Vm, VmFirmware } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';
import { emitVm, requireAllowed, requireVm, type VmContext } from './context.js';

/** A VM's hardware options (issue 12) as stored. */
export interface HardwareSetting {
  firmware: VmFirmware;
  secureBoot: boolean;
  tpm: boolean;
}

export const DEFAULT_HARDWARE: HardwareSetting = { firmware: 'bios', secureBoot: false, tpm: false };

/**
 * The setting `change` makes of `current` (omitted fields keep their value), refused (400
 * VALIDATION) when it asks for Secure Boot without UEFI: nothing is switched off on the caller's
 * behalf, so a request never changes more than it names.
 */
export function mergeHardware(current: HardwareSetting, change: Partial<HardwareSetting>): HardwareSetting {
  const next: HardwareSetting = {
    firmware: change.firmware ?? current.firmware,
    secureBoot: change.secureBoot ?? current.secureBoot,
    tpm: change.tpm ?? current.tpm,
  };
  if (next.secureBoot && next.firmware !== 'uefi') {
    throw new AppError(
      'VALIDATION',
      change.secureBoot
        ? 'Secure Boot needs UEFI firmware: pass "firmware": "uefi" too'
        : 'This VM has Secure Boot on, which needs UEFI: pass "secureBoot": false too to switch to BIOS',
    );
  }
  return next;
}

/** The repo columns of a setting. */
export function hardwareColumns(h: HardwareSetting): { firmware: VmFirmware; secure_boot: number; tpm: number } {
  return { firmware: h.firmware, secure_boot: h.secureBoot ? 1 : 0, tpm: h.tpm ? 1 : 0 };
}

/**
 * Hardware options (issue 12): firmware (BIOS or UEFI), Secure Boot and a TPM 2.0, changed while
 * the VM is stopped (409 VM_NOT_STOPPED otherwise). The runtime keeps what they need (the UEFI
 * variable store, the TPM state) with the VM and applies the setting at the next start.
 */
export class HardwareService {
  constructor(private readonly ctx: VmContext) {}

  set(id: string, body: HardwareBody): Vm {
    const { ctx } = this;
    const release = ctx.locks.acquire(id, 'configure');
    try {
      const vm = requireVm(ctx, id);
      requireAllowed(vm, 'configure', (status) => `Cannot change the hardware while the VM is ${status}; stop it first`);
      const next = mergeHardware({ firmware: vm.firmware, secureBoot: vm.secureBoot, tpm: vm.tpm }, body);
      ctx.repo.update(id, hardwareColumns(next));
      return emitVm(ctx, id);
    } finally {
      release();
    }
  }
}
