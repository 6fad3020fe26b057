/**
 * Global setup of the test projects that start real servers as root: a server installs the
 * nftables table `inet qemu_manager` (guest isolation) and, like a real one, leaves it in place for
 * the VMs that outlive it. The tests leave the host as they found it: a table that was not there
 * before the run is removed after it.
 */
import { spawnSync } from 'node:child_process';

const TABLE = ['inet', 'qemu_manager'];
const hasTable = () => spawnSync('nft', ['list', 'table', ...TABLE], { stdio: 'ignore' }).status === 0;

export default function setup(): () => void {
  const had = hasTable();
  return () => {
    if (!had && hasTable()) spawnSync('nft', ['delete', 'table', ...TABLE], { stdio: 'ignore' });
  };
}
