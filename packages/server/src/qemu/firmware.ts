import fs from 'node:fs';
import path from 'node:path';
import { AppError } from '../lib/errors.js';
import { run } from '../lib/exec.js';
import { O_NOFOLLOW } from './rundir.js';

/** Where Debian's `ovmf` package puts the UEFI firmware (4 MiB flash layout). */
export const OVMF_DIR = '/usr/share/OVMF';

/** The firmware code and the variable store template (Microsoft-keyed for Secure Boot). */
export function ovmfFiles(dir: string, secureBoot: boolean): { code: string; varsTemplate: string } {
  return secureBoot
    ? { code: path.join(dir, 'OVMF_CODE_4M.secboot.fd'), varsTemplate: path.join(dir, 'OVMF_VARS_4M.ms.fd') }
    : { code: path.join(dir, 'OVMF_CODE_4M.fd'), varsTemplate: path.join(dir, 'OVMF_VARS_4M.fd') };
}

/** The VM's own variable store in its state dir: one per kind, so switching Secure Boot never mixes keys. */
export function varsFile(stateDir: string, secureBoot: boolean): string {
  return path.join(stateDir, secureBoot ? 'efivars-secboot.qcow2' : 'efivars.qcow2');
}

/**
 * A VM's state dir (`<data>/vms/<id>/`): the server's own, 0711 (the VM's user passes through to
 * its TPM state, nothing else). Made when missing.
 */
export function ensureStateDir(stateDir: string): void {
  // `<data>/vms/` too: 0711 whatever the umask, so the VM's user can pass through.
  fs.mkdirSync(path.dirname(stateDir), { recursive: true, mode: 0o711 });
  const parent = fs.lstatSync(path.dirname(stateDir));
  if (!parent.isDirectory() || parent.uid !== (process.getuid?.() ?? 0)) {
    throw new AppError('QEMU_START_FAILED', `Cannot start: ${path.dirname(stateDir)} is not a directory of the server`);
  }
  fs.chmodSync(path.dirname(stateDir), 0o711);
  try {
    fs.mkdirSync(stateDir, { mode: 0o711 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  const st = fs.lstatSync(stateDir);
  if (!st.isDirectory() || st.uid !== (process.getuid?.() ?? 0)) {
    throw new AppError('QEMU_START_FAILED', `Cannot start: ${stateDir} is not a directory of the server`);
  }
  fs.chmodSync(stateDir, 0o711);
}

/**
 * Opened descriptors of the UEFI firmware for a start: the code read-only (never chowned: every
 * user may read it), and the VM's variable store read-write, made on first use as a qcow2 copy of
 * the template (`qemu-img convert -f raw -O qcow2`) so snapshots with memory work. The store is
 * kept across starts. The caller closes both descriptors.
 */
export async function openFirmware(opts: {
  ovmfDir: string;
  qemuImgBinary: string;
  stateDir: string;
  secureBoot: boolean;
}): Promise<{ codeFd: number; varsFd: number }> {
  const { code, varsTemplate } = ovmfFiles(opts.ovmfDir, opts.secureBoot);
  for (const f of [code, varsTemplate]) {
    if (!fs.existsSync(f)) throw new AppError('QEMU_START_FAILED', `UEFI firmware not found: ${f} (install the Debian package ovmf)`);
  }
  ensureStateDir(opts.stateDir);
  const vars = varsFile(opts.stateDir, opts.secureBoot);
  if (!fs.existsSync(vars)) {
    const tmp = `${vars}.new`;
    fs.rmSync(tmp, { force: true });
    const r = await run(opts.qemuImgBinary, ['convert', '-q', '-f', 'raw', '-O', 'qcow2', varsTemplate, tmp], { timeoutMs: 60_000 });
    if (r.code !== 0) {
      fs.rmSync(tmp, { force: true });
      throw new AppError('QEMU_START_FAILED', `Cannot make the UEFI variable store: ${r.stderr.trim() || `qemu-img exited with ${r.code}`}`);
    }
    fs.chmodSync(tmp, 0o600);
    fs.renameSync(tmp, vars);
  }
  const codeFd = fs.openSync(code, fs.constants.O_RDONLY);
  let varsFd: number;
  try {
    varsFd = fs.openSync(vars, fs.constants.O_RDWR | O_NOFOLLOW);
    const st = fs.fstatSync(varsFd);
    if (!st.isFile() || st.uid !== (process.getuid?.() ?? 0) || st.nlink !== 1) {
      fs.closeSync(varsFd);
      throw new AppError('QEMU_START_FAILED', `Cannot start: ${vars} is not a file of the server`);
    }
  } catch (err) {
    fs.closeSync(codeFd);
    throw err;
  }
  return { codeFd, varsFd };
}
