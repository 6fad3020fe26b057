import path from 'node:path';
import type { Config } from '../config.js';
import { run } from '../lib/exec.js';
import type { Logger } from '../lib/log.js';
import type { StorageRoots } from '../lib/storage.js';
import type { AdapterDirs, Adapters } from '../runtime/adapters.js';
import type { TapDevices } from '../runtime/port.js';
import { chooseAccel } from './accel.js';
import { GuestIsolation } from './guest-isolation.js';
import { IdentityPool, allowTraverse } from './identity.js';
import { QemuImg } from './qemu-img.js';
import { QemuRuntime } from './runtime.js';

async function qemuVersion(binary: string): Promise<string | null> {
  try {
    const r = await run(binary, ['--version'], { timeoutMs: 10_000 });
    return r.stdout.match(/version (\S+)/)?.[1] ?? null;
  } catch {
    return null;
  }
}

/**
 * The QEMU adapters: the accelerator, the pool of unprivileged QEMU users (who may pass through
 * the data, run and ISO dirs, never read them), the nftables rules that keep guests and qemu-img
 * off host services, qemu-img, and the runtime over QEMU processes.
 */
export async function qemuAdapters(
  config: Config,
  dirs: AdapterDirs,
  storage: StorageRoots,
  log: Logger,
  /** Networks (issue 11): the host's taps (hostnet/); absent: NICs on bridges cannot start. */
  taps?: TapDevices,
): Promise<Adapters> {
  const accel = chooseAccel(config.accel);
  const identities = IdentityPool.fromSetting(config.qemuUser, log, { dataDir: config.dataDir });
  allowTraverse(identities, dirs.dataDir);
  allowTraverse(identities, dirs.run);
  allowTraverse(identities, dirs.isos); // a medium inserted while the VM runs is opened by QEMU by path
  const isolation = await GuestIsolation.setUp({ setting: config.guestIsolation, poolEnabled: identities.enabled }, log);
  const images = new QemuImg(config.qemuImgBinary, { storage, log, confine: (who) => isolation.confine(who), runDir: dirs.run });
  images.recoverLent(); // files a copy had lent to qemu-img when the server died go back first
  const runtime = new QemuRuntime({
    qemuBinary: config.qemuBinary,
    runRoot: dirs.run,
    pool: identities,
    storage,
    isolation,
    vncTcp: config.vncTcp,
    log,
    // hardware options (issue 12): UEFI variable stores and TPM state under <data>/vms/<id>/
    stateRoot: path.join(dirs.dataDir, 'vms'),
    qemuImgBinary: config.qemuImgBinary,
    ...(taps ? { taps } : {}), // networks (issue 11)
  });
  return {
    runtime,
    images,
    info: {
      version: await qemuVersion(config.qemuBinary),
      accel: accel.accel,
      accelReason: accel.reason,
      guestIsolation: () => isolation.status,
    },
  };
}
