import fs from 'node:fs';
import type { AccelSetting } from '../config.js';

interface AccelChoice {
  accel: 'kvm' | 'tcg';
  reason: string;
}

interface AccelProbe {
  kvmOpens: () => boolean;
  hasModule: (name: string) => boolean;
}

const realProbe: AccelProbe = {
  kvmOpens: () => {
    try {
      fs.closeSync(fs.openSync('/dev/kvm', fs.constants.O_RDWR));
      return true;
    } catch {
      return false;
    }
  },
  hasModule: (name) => fs.existsSync(`/sys/module/${name}`),
};

/**
 * KVM only where it really works: /dev/kvm opens AND a hardware KVM module (kvm_intel/kvm_amd) is
 * loaded. A paravirtual /dev/kvm (e.g. kvm_pvm) opens but cannot run ordinary guests.
 */
export function chooseAccel(setting: AccelSetting, probe: AccelProbe = realProbe): AccelChoice {
  if (setting === 'tcg') return { accel: 'tcg', reason: 'ACCEL=tcg' };
  if (setting === 'kvm') return { accel: 'kvm', reason: 'ACCEL=kvm' };
  if (!probe.kvmOpens()) return { accel: 'tcg', reason: '/dev/kvm cannot be opened' };
  const hw = ['kvm_intel', 'kvm_amd'].find((m) => probe.hasModule(m));
  if (!hw) return { accel: 'tcg', reason: '/dev/kvm opens but neither kvm_intel nor kvm_amd is loaded' };
  return { accel: 'kvm', reason: `/dev/kvm opens and ${hw} is loaded` };
}
