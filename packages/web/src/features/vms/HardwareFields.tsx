import type { Iso } from '@qemu-manager/contract';
import { Field } from '../../components/Field';
import { t } from '../../i18n';
import {
  changeDraft, DISK_BUSES, FIRMWARES, hardwareErrors, MACHINES, moveBoot, NIC_MODELS, OS_TYPES, presetFor, secureBootPossible, toggleBoot,
  type HardwareDraft,
} from './hardwareRules';

interface Props {
  draft: HardwareDraft;
  onChange: (next: HardwareDraft) => void;
  /** The ISO library, for the drivers CD-ROM (and the windows preset's virtio-win). */
  isos: readonly Iso[] | undefined;
  disabled?: boolean;
  /** Show the OS type selector, whose choice fills in the other fields (the create dialog). */
  withPreset?: boolean;
  /** Prefix of the test ids, e.g. "hw" gives hw-firmware, hw-tpm, hw-boot-0-up… */
  testId: string;
  /** Show the errors even before a change (after a submit). */
  showErrors?: boolean;
}

/** Every hardware option, each shown and editable; Secure Boot only where it is possible. */
export function HardwareFields({ draft, onChange, isos, disabled, withPreset, testId, showErrors = true }: Props) {
  const set = (patch: Partial<HardwareDraft>) => onChange(changeDraft(draft, patch));
  const errors = hardwareErrors(draft);
  const sbPossible = secureBootPossible(draft);
  return (
    <div className="hardware-fields" data-testid={`${testId}-fields`}>
      {withPreset && (
        <Field label={t.hardware.osType} hint={t.hardware.osTypeHint}>
          <select data-testid={`${testId}-os`} value={draft.osType} disabled={disabled}
            onChange={(e) => onChange(presetFor(e.target.value as HardwareDraft['osType'], isos))}>
            {OS_TYPES.map((o) => <option key={o} value={o}>{t.hardware.osTypes[o]}</option>)}
          </select>
        </Field>
      )}
      <div className="form-row">
        <Field label={t.hardware.firmware}>
          <select data-testid={`${testId}-firmware`} value={draft.firmware} disabled={disabled} onChange={(e) => set({ firmware: e.target.value as HardwareDraft['firmware'] })}>
            {FIRMWARES.map((f) => <option key={f} value={f}>{t.hardware.firmwares[f]}</option>)}
          </select>
        </Field>
        <Field label={t.hardware.machine}>
          <select data-testid={`${testId}-machine`} value={draft.machine} disabled={disabled} onChange={(e) => set({ machine: e.target.value as HardwareDraft['machine'] })}>
            {MACHINES.map((m) => <option key={m} value={m}>{t.hardware.machines[m]}</option>)}
          </select>
        </Field>
      </div>
      <div className="form-row">
        <label className="check">
          <input type="checkbox" data-testid={`${testId}-secure-boot`} checked={draft.secureBoot} disabled={disabled || !sbPossible}
            onChange={(e) => set({ secureBoot: e.target.checked })} />
          <span>
            {t.hardware.secureBoot}
            <span className="field-hint block">{sbPossible ? t.hardware.secureBootHint : t.hardware.secureBootNeedsUefi}</span>
          </span>
        </label>
        <label className="check">
          <input type="checkbox" data-testid={`${testId}-tpm`} checked={draft.tpm} disabled={disabled} onChange={(e) => set({ tpm: e.target.checked })} />
          <span>
            {t.hardware.tpm}
            <span className="field-hint block">{t.hardware.tpmHint}</span>
          </span>
        </label>
      </div>
      {showErrors && errors.includes('secureBoot') && <p className="field-error" role="alert">{t.hardware.secureBootNeedsUefi}</p>}
      <div className="form-row">
        <Field label={t.hardware.diskBus}>
          <select data-testid={`${testId}-disk-bus`} value={draft.diskBus} disabled={disabled} onChange={(e) => set({ diskBus: e.target.value as HardwareDraft['diskBus'] })}>
            {DISK_BUSES.map((b) => <option key={b} value={b}>{t.hardware.diskBuses[b]}</option>)}
          </select>
        </Field>
        <Field label={t.hardware.nicModel}>
          <select data-testid={`${testId}-nic-model`} value={draft.nicModel} disabled={disabled} onChange={(e) => set({ nicModel: e.target.value as HardwareDraft['nicModel'] })}>
            {NIC_MODELS.map((n) => <option key={n} value={n}>{t.hardware.nicModels[n]}</option>)}
          </select>
        </Field>
      </div>
      <fieldset className="fieldset boot-order" data-testid={`${testId}-boot`}>
        <legend>{t.hardware.bootOrder}</legend>
        <ol className="boot-list">
          {draft.boot.map((b, i) => {
            const name = t.hardware.bootDevices[b.device];
            return (
              <li key={b.device} className={b.on ? 'boot-on' : 'boot-off'} data-testid={`${testId}-boot-${b.device}`} data-on={b.on}>
                <label className="check">
                  <input type="checkbox" checked={b.on} disabled={disabled} onChange={(e) => set({ boot: toggleBoot(draft.boot, i, e.target.checked) })} />
                  {name}
                </label>
                <span className="boot-moves">
                  <button type="button" className="btn btn-ghost btn-sm" aria-label={t.hardware.moveUp(name)} title={t.hardware.moveUp(name)} disabled={disabled || i === 0}
                    onClick={() => set({ boot: moveBoot(draft.boot, i, -1) })} data-testid={`${testId}-boot-${b.device}-up`}>↑</button>
                  <button type="button" className="btn btn-ghost btn-sm" aria-label={t.hardware.moveDown(name)} title={t.hardware.moveDown(name)} disabled={disabled || i === draft.boot.length - 1}
                    onClick={() => set({ boot: moveBoot(draft.boot, i, 1) })} data-testid={`${testId}-boot-${b.device}-down`}>↓</button>
                </span>
              </li>
            );
          })}
        </ol>
        <p className={errors.includes('bootOrder') && showErrors ? 'field-error' : 'field-hint'}>
          {errors.includes('bootOrder') ? t.hardware.bootOrderEmpty : t.hardware.bootOrderHint}
        </p>
      </fieldset>
      <Field label={t.hardware.driversIso} hint={t.hardware.driversIsoHint}>
        <select data-testid={`${testId}-drivers-iso`} value={draft.driversIso ?? ''} disabled={disabled} onChange={(e) => set({ driversIso: e.target.value || null })}>
          <option value="">{t.hardware.driversIsoNone}</option>
          {draft.driversIso && !isos?.some((i) => i.path === draft.driversIso) && <option value={draft.driversIso}>{draft.driversIso}</option>}
          {isos?.map((iso) => <option key={iso.path} value={iso.path}>{iso.name}</option>)}
        </select>
      </Field>
    </div>
  );
}
