// `npm test`: installs host programs if needed, builds, type-checks (tests included), lints, runs every test project (unit, integration
// against real QEMU, browser end-to-end), then checks that no QEMU process was left behind.
import { spawnSync } from 'node:child_process';
import { build, root } from './build.mjs';
import { ensureSystemDeps, TEST } from './system-deps.mjs';

ensureSystemDeps(TEST);
build();
for (const check of ['typecheck', 'lint']) {
  const r = spawnSync('npm', ['run', check], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) process.exit(r.status ?? 1);
}
const vitest = spawnSync(process.execPath, ['node_modules/vitest/vitest.mjs', 'run', ...process.argv.slice(2)], {
  cwd: root,
  stdio: 'inherit',
});
const left = spawnSync('pgrep', ['-a', '-f', 'qemu-system.*qm-test-'], { encoding: 'utf8' }).stdout.trim();
if (left) {
  console.error(`QEMU processes left behind by the tests:\n${left}`);
  process.exit(1);
}
process.exit(vitest.status ?? 1);
