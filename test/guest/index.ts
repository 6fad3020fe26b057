// The tiny real guest OS used by integration tests: builds it on demand (build.sh), caches it
// under <repo>/.cache/test-guest/, and reads back the marker it writes to disks.
// See README.md in this directory.
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Printed on the serial console (and the VGA console) once the guest is fully up, including
 *  the ACPI power button handler: a QMP `system_powerdown` after this line powers it off. */
export const READY_MARKER = 'TESTGUEST_READY';
/** Sector 0 of every blank disk is overwritten with `TESTGUEST_DISK_MARKER dev=<name>\n`. */
export const DISK_MARKER = 'TESTGUEST_DISK_MARKER';
/** `TESTGUEST TPM <major>` (before READY) when /dev/tpm0 appears: `TESTGUEST TPM 2` for swtpm --tpm2. */
export const TPM_MARKER = 'TESTGUEST TPM';
/** `TESTGUEST CIDATA <local-hostname>` (before READY) when a CD-ROM with the ISO 9660 volume id
 *  `cidata` is present (the NoCloud seed); followed by `TESTGUEST INSTANCE <instance-id>`. */
export const CIDATA_MARKER = 'TESTGUEST CIDATA';
export const INSTANCE_MARKER = 'TESTGUEST INSTANCE';
/** After READY, the seed's `#cloud-config` `runcmd:` items run (their output goes to serial and
 *  VGA), then this line is printed. Only when the seed had a user-data with runcmd items. */
export const RUNCMD_DONE_MARKER = 'TESTGUEST RUNCMD_DONE';
/** Printed (before READY) when the guest was booted by UEFI firmware (/sys/firmware/efi exists). */
export const UEFI_MARKER = 'TESTGUEST UEFI';
/** Under UEFI, `TESTGUEST EFIVAR <n>`: the guest creates one more non-volatile EFI variable of
 *  its own GUID each boot, n = how many there are now (1 on the first boot of a fresh store). */
export const EFIVAR_MARKER = 'TESTGUEST EFIVAR';
/** Under UEFI, `TESTGUEST SECUREBOOT <0|1>`, the firmware's SecureBoot variable. */
export const SECUREBOOT_MARKER = 'TESTGUEST SECUREBOOT';
/** The guest agent (issue 14): qemu-ga started on the virtio-serial port org.qemu.guest_agent.0 (after READY). */
export const AGENT_MARKER = 'TESTGUEST AGENT';
/** Printed by /sbin/shutdown, which qemu-ga runs for guest-shutdown (the ACPI button prints TESTGUEST_POWEROFF instead). */
export const AGENT_SHUTDOWN_MARKER = 'TESTGUEST_AGENT_SHUTDOWN';

/** The n of the last `TESTGUEST EFIVAR <n>` line in a serial log, or null. */
export function lastEfivarCount(serial: string): number | null {
  const all = [...serial.matchAll(/TESTGUEST EFIVAR (\d+)/g)];
  return all.length ? Number(all[all.length - 1][1]) : null;
}

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '..', '..');
const buildScript = join(here, 'build.sh');
const cacheDir = join(repoRoot, '.cache', 'test-guest');
const isoPath = join(cacheDir, 'testguest.iso');
/** sha256 of the build.sh that produced the cached ISO: editing build.sh triggers a rebuild. */
const stampPath = `${isoPath}.recipe-sha256`;
const cloudImagePath = join(cacheDir, 'testguest-cloud.qcow2');
/** The recipe hash the cached cloud image was made from (it is converted from the ISO). */
const cloudStampPath = `${cloudImagePath}.recipe-sha256`;
const lockDir = join(cacheDir, 'build.lock');
const lockOwnerFile = join(lockDir, 'owner.json');

/** How long to wait for another process's build before giving up. */
const LOCK_WAIT_MS = 15 * 60_000;
/** A lock whose owner cannot be checked (other host, unreadable owner file) is considered
 *  abandoned after this long; a build takes ~10-20 s. */
const LOCK_STALE_MS = 30 * 60_000;
/** Grace period for a lock directory whose owner file has not been written yet. */
const LOCK_OWNERLESS_GRACE_MS = 30_000;
const LOCK_POLL_MS = 250;
const OUTPUT_TAIL_BYTES = 6_000;

interface LockOwner {
  pid: number;
  host: string;
  since: number;
}

/**
 * Returns the absolute path of the test guest ISO, building it first (about 10-20 s, plus a
 * one-time ~73 MB download of Debian packages) when it is not cached yet or build.sh has
 * changed since. Safe to call concurrently from several processes: one builds, the others
 * wait for it.
 */
export async function ensureTestGuestIso(): Promise<string> {
  const recipe = await recipeHash();
  if (await isBuilt(recipe)) return isoPath;
  await mkdir(cacheDir, { recursive: true });
  const release = await acquireLock();
  try {
    if (await isBuilt(recipe)) return isoPath; // built by another process while we waited
    await runBuild();
    if (!(await isBuilt(null))) {
      throw new Error(`test guest build finished but ${isoPath} is missing`);
    }
    const tmpStamp = `${stampPath}.tmp-${process.pid}`;
    await writeFile(tmpStamp, `${recipe}\n`);
    await rename(tmpStamp, stampPath);
    return isoPath;
  } finally {
    await release();
  }
}

/**
 * Returns the absolute path of a qcow2 "cloud image" of the test guest: the hybrid ISO converted
 * to qcow2 (cached next to the ISO, rebuilt with it). Used as a VM's first disk, with no CD, it
 * boots under BIOS (the isohybrid MBR starts isolinux) and under UEFI (the EFI System Partition
 * starts GRUB); the guest then finds its own ISO 9660 file system on that disk. Its sector 0 is
 * the boot code, never blank, so the guest never writes its disk marker over it. Treat the file
 * as read-only (copy it, or put an overlay on it).
 */
export async function ensureTestGuestCloudImage(): Promise<string> {
  const iso = await ensureTestGuestIso();
  const recipe = await recipeHash();
  if (await cloudImageBuilt(recipe)) return cloudImagePath;
  const release = await acquireLock();
  try {
    if (await cloudImageBuilt(recipe)) return cloudImagePath;
    const tmp = `${cloudImagePath}.tmp-${process.pid}`;
    try {
      await run('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', iso, tmp]);
      const sector0 = Buffer.alloc(512);
      const fh = await open(iso, 'r');
      try {
        await fh.read(sector0, 0, 512, 0);
      } finally {
        await fh.close();
      }
      if (sector0.every((x) => x === 0)) throw new Error(`${iso}: sector 0 is blank (not a hybrid ISO?)`);
      await rename(tmp, cloudImagePath);
    } finally {
      await rm(tmp, { force: true });
    }
    const tmpStamp = `${cloudStampPath}.tmp-${process.pid}`;
    await writeFile(tmpStamp, `${recipe}\n`);
    await rename(tmpStamp, cloudStampPath);
    return cloudImagePath;
  } finally {
    await release();
  }
}

async function cloudImageBuilt(recipe: string): Promise<boolean> {
  try {
    if (!(await stat(cloudImagePath)).isFile()) return false;
    return (await readFile(cloudStampPath, 'utf8')).trim() === recipe;
  } catch {
    return false;
  }
}

/**
 * Reads sector 0 of a disk image (any format qemu-img knows; detected with `qemu-img info`)
 * and returns the guest's marker line, e.g. `TESTGUEST_DISK_MARKER dev=vda`, or null when the
 * sector does not start with DISK_MARKER. Uses `-U` (force share), so it also works while a
 * QEMU process has the image open, although a running guest's writes may not be visible yet.
 */
export async function readDiskMarker(imagePath: string): Promise<string | null> {
  const image = resolve(imagePath);
  const info = await run('qemu-img', ['info', '-U', '--output=json', image]);
  let format: unknown;
  try {
    format = (JSON.parse(info.stdout) as { format?: unknown }).format;
  } catch {
    throw new Error(`qemu-img info ${image}: unparsable output: ${info.stdout.slice(0, 500)}`);
  }
  if (typeof format !== 'string' || !/^[a-z0-9_-]+$/.test(format)) {
    throw new Error(`qemu-img info ${image}: no usable image format in its output`);
  }

  const dir = await mkdtemp(join(tmpdir(), 'testguest-sector-'));
  try {
    const out = join(dir, 'sector0.raw');
    await run('qemu-img', [
      'dd', '-U', '-f', format, '-O', 'raw', 'bs=512', 'count=1', `if=${image}`, `of=${out}`,
    ]);
    const sector = await readFile(out);
    const marker = Buffer.from(DISK_MARKER, 'latin1');
    if (sector.length < marker.length || !sector.subarray(0, marker.length).equals(marker)) {
      return null;
    }
    let end = sector.indexOf(0x0a);
    if (end === -1) end = sector.indexOf(0x00);
    if (end === -1) end = sector.length;
    return sector.subarray(0, end).toString('latin1');
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** True when the ISO exists (build.sh renames a complete ISO into place) and, unless `recipe`
 *  is null, was built by the current build.sh. */
async function isBuilt(recipe: string | null): Promise<boolean> {
  try {
    const st = await stat(isoPath);
    if (!st.isFile() || st.size === 0) return false;
  } catch {
    return false;
  }
  if (recipe === null) return true;
  try {
    return (await readFile(stampPath, 'utf8')).trim() === recipe;
  } catch {
    return false;
  }
}

async function recipeHash(): Promise<string> {
  return createHash('sha256').update(await readFile(buildScript)).digest('hex');
}

// ---------------------------------------------------------------------------------------------
// Build
// ---------------------------------------------------------------------------------------------

function runBuild(): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    // build.sh writes to a temp name and renames, so a failed or killed build leaves no ISO.
    const child = spawn('bash', [buildScript, isoPath], {
      cwd: repoRoot,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let tail = '';
    const forward = (chunk: Buffer): void => {
      process.stderr.write(chunk); // the build's progress stays visible
      tail = (tail + chunk.toString('utf8')).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout.on('data', forward);
    child.stderr.on('data', forward);
    child.on('error', (err) => {
      reject(new Error(`cannot run the test guest build (bash ${buildScript}): ${err.message}`));
    });
    child.on('close', (code, signal) => {
      if (code === 0) {
        resolvePromise();
        return;
      }
      const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
      reject(
        new Error(
          `building the test guest ISO failed: bash ${buildScript} ${isoPath} ${how}.\n` +
            `--- last build output ---\n${tail.trimEnd()}\n--- end of build output ---`,
        ),
      );
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Cross-process lock: an exclusive `mkdir` of build.lock/ plus an owner file for staleness.
// ---------------------------------------------------------------------------------------------

async function acquireLock(): Promise<() => Promise<void>> {
  const deadline = Date.now() + LOCK_WAIT_MS;
  for (;;) {
    try {
      await mkdir(lockDir);
    } catch (err) {
      if (errorCode(err) !== 'EEXIST') throw err;
      if (await lockIsStale()) {
        await breakLock();
        continue;
      }
      if (Date.now() > deadline) {
        throw new Error(
          `timed out after ${LOCK_WAIT_MS / 1000} s waiting for another process to build the ` +
            `test guest (lock ${lockDir}); remove that directory if no build is running`,
        );
      }
      await sleep(LOCK_POLL_MS);
      continue;
    }
    const owner: LockOwner = { pid: process.pid, host: hostname(), since: Date.now() };
    await writeFile(lockOwnerFile, JSON.stringify(owner));
    return async () => {
      // Only remove the lock if it is still ours (it may have been broken as stale).
      try {
        const current = JSON.parse(await readFile(lockOwnerFile, 'utf8')) as LockOwner;
        if (current.pid !== owner.pid || current.since !== owner.since) return;
      } catch {
        return;
      }
      await rm(lockDir, { recursive: true, force: true });
    };
  }
}

async function lockIsStale(): Promise<boolean> {
  let owner: LockOwner | null = null;
  try {
    owner = JSON.parse(await readFile(lockOwnerFile, 'utf8')) as LockOwner;
  } catch (err) {
    if (errorCode(err) !== 'ENOENT' && !(err instanceof SyntaxError)) throw err;
  }
  if (owner && typeof owner.pid === 'number' && owner.host === hostname()) {
    return !processIsAlive(owner.pid);
  }
  let ageMs: number;
  try {
    ageMs = Date.now() - (await stat(lockDir)).mtimeMs;
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return false; // released meanwhile: just retry mkdir
    throw err;
  }
  // No owner file yet: its creator is between mkdir and writeFile (or died right there).
  return ageMs > (owner ? LOCK_STALE_MS : LOCK_OWNERLESS_GRACE_MS);
}

async function breakLock(): Promise<void> {
  // Rename first (atomic), so two processes breaking the same lock cannot both succeed.
  const doomed = `${lockDir}.stale-${process.pid}-${randomBytes(4).toString('hex')}`;
  try {
    await rename(lockDir, doomed);
  } catch (err) {
    if (errorCode(err) === 'ENOENT') return;
    throw err;
  }
  process.stderr.write(`test-guest: removed a stale build lock (${lockDir})\n`);
  await rm(doomed, { recursive: true, force: true });
}

function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return errorCode(err) === 'EPERM';
  }
}

// ---------------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------------

function run(cmd: string, args: string[]): Promise<{ stdout: string; stderr: string }> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (c: Buffer) => out.push(c));
    child.stderr.on('data', (c: Buffer) => err.push(c));
    child.on('error', (e) => reject(new Error(`cannot run ${cmd}: ${e.message}`)));
    child.on('close', (code, signal) => {
      const stdout = Buffer.concat(out).toString('utf8');
      const stderr = Buffer.concat(err).toString('utf8');
      if (code === 0) {
        resolvePromise({ stdout, stderr });
      } else {
        const how = signal ? `killed by ${signal}` : `exit code ${code}`;
        reject(new Error(`${cmd} ${args.join(' ')} failed (${how}): ${stderr.trim()}`));
      }
    });
  });
}

function errorCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err
    ? String((err).code)
    : undefined;
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** Sector 0 of a script disk starts with this; the guest runs the script that follows after READY. */
export const SCRIPT_MARKER = 'TESTGUEST_SCRIPT';

/**
 * Writes a raw 1 MiB image that the guest treats as a script disk: sector 0 holds SCRIPT_MARKER,
 * the shell script follows from sector 1 (at most 64 KiB). After READY the guest runs it; every
 * line it prints goes to the serial log, then `TESTGUEST_SCRIPT_DONE`. The file is created 0600.
 */
export async function writeScriptDisk(imagePath: string, script: string): Promise<void> {
  const body = Buffer.from(script, 'utf8');
  if (body.length > 64 * 1024 - 512 || body.includes(0)) throw new Error('script must be at most 63.5 KiB of text');
  const image = Buffer.alloc(1 << 20);
  image.write(`${SCRIPT_MARKER}\n`, 0, 'latin1');
  body.copy(image, 512);
  await writeFile(imagePath, image, { mode: 0o600 });
}
