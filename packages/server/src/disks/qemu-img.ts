import type { DiskInfo } from '@qemu-manager/contract';
import { AppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';

/** qemu-img, always through an argv array. */
export class QemuImg {
  constructor(private readonly binary: string) {}

  /** `qemu-img info --output=json`; `-U` lets it read an image that a running VM holds. */
  async info(file: string): Promise<DiskInfo> {
    const [first] = await this.chain(file);
    if (!first) throw new AppError(500, 'INTERNAL', 'qemu-img info returned nothing');
    return first;
  }

  /** The image and every backing file below it, the image first. */
  async chain(file: string): Promise<DiskInfo[]> {
    const r = await run(this.binary, ['info', '--output=json', '-U', '--backing-chain', '--', file], { timeoutMs: 30_000 });
    if (r.code !== 0) {
      throw new AppError(400, 'BAD_REQUEST', `qemu-img cannot read ${file}: ${cleanMessage(r.stderr)}`);
    }
    return JSON.parse(r.stdout) as DiskInfo[];
  }

  async create(file: string, format: string, sizeGb: number): Promise<void> {
    const r = await run(this.binary, ['create', '-q', '-f', format, '--', file, `${sizeGb}G`], { timeoutMs: 300_000 });
    if (r.code !== 0) throw new Error(cleanMessage(r.stderr) || `qemu-img create exited with ${r.code}`);
  }
}

export function cleanMessage(stderr: string): string {
  return stderr
    .split('\n')
    .map((l) => l.replace(/^qemu-img:\s*/, '').trim())
    .filter(Boolean)
    .join('; ');
}
