import fs from 'node:fs';
import path from 'node:path';

/** What the server learns at start about the host boot it runs in. */
export interface BootCheck {
  /** True when the recorded boot id differs from the host's (or none was recorded): the host booted since the last server start. */
  hostBoot: boolean;
  /** The host's boot id, null when it could not be read (then no autostart: we cannot tell). */
  bootId: string | null;
}

const BOOT_ID = /^[0-9a-f-]{8,64}$/i;

/**
 * Compares the host's boot id (`/proc/sys/kernel/random/boot_id`, new at every kernel boot) with the
 * one recorded in `recordFile` at the last server start, then records the current one (written to a
 * temp name and renamed, so a crash leaves the old record or the new one). A server restart with
 * VMs still running sees the same id: no host boot. An unreadable id is never a host boot.
 */
export function checkHostBoot(bootIdFile: string, recordFile: string): BootCheck {
  let bootId: string | null;
  try {
    bootId = fs.readFileSync(bootIdFile, 'utf8').trim();
    if (!BOOT_ID.test(bootId)) bootId = null;
  } catch {
    bootId = null;
  }
  if (bootId === null) return { hostBoot: false, bootId: null };
  let recorded: string | null = null;
  try {
    recorded = fs.readFileSync(recordFile, 'utf8').trim();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  if (recorded !== bootId) {
    const tmp = path.join(path.dirname(recordFile), `.${path.basename(recordFile)}.tmp`);
    fs.writeFileSync(tmp, `${bootId}\n`, { mode: 0o600 });
    fs.renameSync(tmp, recordFile);
  }
  return { hostBoot: recorded !== bootId, bootId };
}
