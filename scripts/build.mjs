// Builds what is out of date: the TypeScript of contract+server (incremental) and the web UI
// (only when its sources are newer than the last build).
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function newest(dir) {
  let t = 0;
  if (!fs.existsSync(dir)) return t;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    if (ent.name === 'node_modules' || ent.name === 'dist' || ent.name.startsWith('.')) continue;
    const p = path.join(dir, ent.name);
    t = Math.max(t, ent.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

function run(cmd, args) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}

export function build({ force = false } = {}) {
  if (!fs.existsSync(path.join(root, 'node_modules'))) {
    console.error('Dependencies are not installed: run `npm ci` first.');
    process.exit(1);
  }
  run(process.execPath, [path.join(root, 'node_modules/typescript/bin/tsc'), '-b', 'packages/server']);
  const web = path.join(root, 'packages/web');
  const built = path.join(web, 'dist/index.html');
  if (!fs.existsSync(path.join(web, 'vite.config.ts'))) return;
  const stamp = fs.existsSync(built) ? fs.statSync(built).mtimeMs : 0;
  const sources = Math.max(newest(path.join(web, 'src')), newest(path.join(root, 'packages/contract/src')), fs.statSync(path.join(web, 'index.html')).mtimeMs);
  if (force || sources > stamp) run('npm', ['run', 'build', '-w', 'packages/web']);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) build({ force: process.argv.includes('--force') });
