import { describe, expect, it } from 'vitest';
import { chooseAccel } from './accel.js';

const probe = (opens: boolean, modules: string[]) => ({ kvmOpens: () => opens, hasModule: (m: string) => modules.includes(m) });

describe('chooseAccel', () => {
  it('picks KVM only when /dev/kvm opens and a hardware KVM module is loaded', () => {
    expect(chooseAccel('auto', probe(true, ['kvm', 'kvm_intel'])).accel).toBe('kvm');
    expect(chooseAccel('auto', probe(true, ['kvm', 'kvm_amd'])).accel).toBe('kvm');
  });
  it('falls back to TCG for a paravirtual /dev/kvm or none', () => {
    const pvm = chooseAccel('auto', probe(true, ['kvm', 'kvm_pvm']));
    expect(pvm.accel).toBe('tcg');
    expect(pvm.reason).toMatch(/neither kvm_intel nor kvm_amd/);
    expect(chooseAccel('auto', probe(false, ['kvm_intel'])).accel).toBe('tcg');
  });
  it('obeys ACCEL', () => {
    expect(chooseAccel('tcg', probe(true, ['kvm_intel'])).accel).toBe('tcg');
    expect(chooseAccel('kvm', probe(false, [])).accel).toBe('kvm');
  });
});
