import type { DiskFormat } from '@qemu-manager/contract';

const FORMATS: readonly DiskFormat[] = ['qcow2', 'raw', 'vmdk'];

/** The image formats the server can create. */
export function DiskFormatSelect(props: { value: DiskFormat; onChange: (f: DiskFormat) => void; testId: string; disabled?: boolean; id?: string }) {
  return (
    <select id={props.id} data-testid={props.testId} value={props.value} disabled={props.disabled} onChange={(e) => props.onChange(e.target.value as DiskFormat)}>
      {FORMATS.map((f) => (
        <option key={f} value={f}>
          {f}
        </option>
      ))}
    </select>
  );
}
