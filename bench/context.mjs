// What every section of `npm run bench` shares: the knobs (CFG), the results object that becomes
// bench-results/latest.json, the log line prefix, and the cleanup list that runs once at the end,
// on an error and on Ctrl-C.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { forkHelper } from './lib.mjs';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const int = (name, dflt) => {
  const v = Number.parseInt(process.env[name] ?? '', 10);
  return Number.isInteger(v) && v > 0 ? v : dflt;
};
export const CFG = {
  startStopRuns: int('BENCH_RUNS', 10),
  vms: int('BENCH_VMS', 1000),
  throughputRunning: 10,
  scaleRunning: int('BENCH_SCALE', 50),
  loadSeconds: int('BENCH_LOAD_S', 4),
  loadRounds: 2,
  connections: 10,
  consoleOpens: 100,
  relayMiB: int('BENCH_RELAY_MIB', 200),
  relayRounds: 3,
  pings: 1000,
  uiRuns: 3,
  memoryMiB: 64,
  // Storage rows (bench/storage.mjs)
  storageRuns: int('BENCH_STORAGE_RUNS', 3),
  linkedRuns: 10,
  snapshotRuns: 3,
  uploadMiB: 512,
};
/** BENCH_ONLY=storage,relay,…: only these sections (relay, lifecycle, load, storage, backup, cloud, metrics, serial, ui); default all. */
const only = (process.env.BENCH_ONLY ?? '').split(',').map((s) => s.trim()).filter(Boolean);
export const SECTIONS = ['relay', 'lifecycle', 'load', 'storage', 'backup', 'cloud', 'metrics', 'serial', 'ui'];
export const wanted = (section) => only.length === 0 || only.includes(section);
export const MiB = 1024 * 1024;
export const FAKE_VM = '00000000-0000-4000-8000-000000000000';

export const results = { startedAt: new Date().toISOString(), config: CFG, machine: machine(), sections: {} };
export const log = (...a) => console.log(`[bench ${((Date.now() - Date.parse(results.startedAt)) / 1000).toFixed(0).padStart(3)}s]`, ...a);

// --- cleanup: tasks run in reverse order of registration, once ----------------------------------
const cleanupTasks = [];
let cleaning = null;
export function onCleanup(name, fn) {
  cleanupTasks.push({ name, fn });
}
export function cleanup() {
  cleaning ??= (async () => {
    for (const { name, fn } of cleanupTasks.reverse()) {
      try {
        await fn();
      } catch (err) {
        console.error(`cleanup (${name}) failed: ${err.message}`);
      }
    }
  })();
  return cleaning;
}

/** Forks bench/<script> (see forkHelper) and registers its stop as cleanup task `name`. */
export async function helper(name, script, args) {
  const h = await forkHelper(path.join(root, 'bench', script), args);
  onCleanup(name, h.stop);
  return h;
}

function machine() {
  const cpus = os.cpus();
  const qemu = spawnSync('qemu-system-x86_64', ['--version'], { encoding: 'utf8' });
  const virt = spawnSync('systemd-detect-virt', [], { encoding: 'utf8' });
  let kvm = 'no /dev/kvm';
  try {
    fs.accessSync('/dev/kvm', fs.constants.R_OK | fs.constants.W_OK);
    kvm = '/dev/kvm present (not used: ACCEL=tcg)';
  } catch {
    /* absent */
  }
  const git = (args) => spawnSync('git', args, { cwd: root, encoding: 'utf8' }).stdout?.trim() ?? '';
  return {
    commit: git(['rev-parse', '--short', 'HEAD']),
    serverSourcesDirty: git(['status', '--porcelain', '--', 'packages/server', 'packages/contract']) !== '',
    cpuModel: cpus[0]?.model ?? 'unknown',
    cpus: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    kernel: `${os.type()} ${os.release()}`,
    virtualization: virt.status === 0 ? virt.stdout.trim() : 'unknown',
    node: process.version,
    qemu: qemu.stdout?.split('\n')[0] ?? 'not found',
    kvm,
    accel: 'tcg',
  };
}
