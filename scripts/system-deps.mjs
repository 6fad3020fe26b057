// Makes sure the host programs QEMU Manager needs are installed. As root it installs the missing
// Debian packages itself; otherwise it prints the exact command to run and exits.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';

export const RUNTIME = [
  { bin: 'qemu-system-x86_64', pkg: 'qemu-system-x86' },
  { bin: 'qemu-img', pkg: 'qemu-utils' },
  // nftables: the rules that keep guests off the host's own services.
  { bin: 'nft', pkg: 'nftables', path: '/usr/sbin/nft' },
  // hardware options (issue 12): UEFI firmware (OVMF) and the TPM 2.0 emulator
  { bin: 'OVMF_CODE_4M.fd', pkg: 'ovmf', path: '/usr/share/OVMF/OVMF_CODE_4M.fd' },
  { bin: 'swtpm', pkg: 'swtpm' },
  { bin: 'swtpm_setup', pkg: 'swtpm-tools' },
  // cloud-init (issue 12): writes the NoCloud seed volume at each start of a VM with a config
  { bin: 'xorriso', pkg: 'xorriso' },
  // networks (issue 11): DHCP and DNS of managed networks
  { bin: 'dnsmasq', pkg: 'dnsmasq-base', path: '/usr/sbin/dnsmasq' },
  // networks (issue 11): bridges and taps (and the tests' network namespaces)
  { bin: 'ip', pkg: 'iproute2', path: '/usr/sbin/ip' },
];
export const TEST = [
  ...RUNTIME,
  { bin: 'chromium', pkg: 'chromium', path: '/usr/bin/chromium' },
  { bin: 'openssl', pkg: 'openssl' },
  // a DHCP client in the host network adapter's test (udhcpc)
  { bin: 'busybox', pkg: 'busybox', path: '/bin/busybox' },
];

function has(dep) {
  if (dep.path) return fs.existsSync(dep.path);
  return spawnSync('sh', ['-c', 'command -v "$0"', dep.bin], { stdio: 'ignore' }).status === 0;
}

function apt(args) {
  const r = spawnSync('apt-get', args, { stdio: 'inherit', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  return r.status === 0;
}

export function ensureSystemDeps(deps) {
  const missing = deps.filter((d) => !has(d));
  if (missing.length === 0) return;
  const pkgs = [...new Set(missing.map((d) => d.pkg))];
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  if (!isRoot) {
    console.error(`Missing programs: ${missing.map((d) => d.bin).join(', ')}. Install them with:\n`);
    console.error(`  sudo apt-get update && sudo apt-get install -y --no-install-recommends ${pkgs.join(' ')}\n`);
    process.exit(1);
  }
  console.error(`Installing ${pkgs.join(' ')} ...`);
  const install = ['install', '-y', '-q', '--no-install-recommends', ...pkgs];
  if (!apt(install) && !(apt(['update', '-q']) && apt(install))) {
    console.error(`apt-get install ${pkgs.join(' ')} failed`);
    process.exit(1);
  }
}
