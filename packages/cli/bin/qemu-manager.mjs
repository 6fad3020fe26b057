#!/usr/bin/env node
// Launcher of the CLI: builds packages/cli (and the contract it uses) when dist/ is missing or older
// than the sources, then runs it.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const pkg = path.resolve(path.dirname(fs.realpathSync(fileURLToPath(import.meta.url))), '..');
const main = path.join(pkg, 'dist/main.js');
const stamp = path.join(pkg, 'dist/.built');

function newest(dir) {
  let t = 0;
  for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, ent.name);
    t = Math.max(t, ent.isDirectory() ? newest(p) : fs.statSync(p).mtimeMs);
  }
  return t;
}

const built = fs.existsSync(main) && fs.existsSync(stamp) ? fs.statSync(stamp).mtimeMs : 0;
if (built < Math.max(newest(path.join(pkg, 'src')), newest(path.join(pkg, '../contract/src')))) {
  const root = path.resolve(pkg, '../..');
  const tsc = path.join(root, 'node_modules/typescript/bin/tsc');
  const r = spawnSync(process.execPath, [tsc, '-b', pkg], { cwd: root, stdio: ['ignore', 'ignore', 'inherit'] });
  if (r.status !== 0) {
    console.error('qemu-manager: building packages/cli failed (npx tsc -b packages/cli)');
    process.exit(2);
  }
  fs.writeFileSync(stamp, '');
}
await import(main);
