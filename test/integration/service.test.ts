/**
 * Service and autostart (issue 15) on real QEMU with the test guest: a SIGTERM to the server leaves
 * the VMs running (a service stop or restart with KillMode=process); the guests unit's ExecStop
 * (`admin host shutdown-vms`) makes the guest power off through ACPI (its serial log shows the power
 * button's handler) and powers off a VM without an OS at the timeout, ending with every VM stopped.
 */
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READY_MARKER } from '../guest/index.js';
import { EventLog, TestServer, killQemusOf, qemuPidsOf, repoRoot, serialLog, startGuestServer, waitFor } from './harness.js';

const CLI = path.join(repoRoot, 'packages/server/dist/cli.js');
const POWEROFF_MARKER = 'TESTGUEST_POWEROFF'; // printed by the guest's ACPI power-button handler
const AGENT_SHUTDOWN_MARKER = 'TESTGUEST_AGENT_SHUTDOWN'; // printed by the guest's shutdown, which its qemu-ga runs

let server: TestServer;
let events: EventLog;
let isoPath: string;

beforeAll(async () => {
  ({ server, events, isoPath } = await startGuestServer());
});

afterAll(async () => {
  await events?.close();
  const dir = server?.dataDir;
  await server?.dispose();
  if (dir) killQemusOf(dir); // by pid, whatever a failed test left
});

function admin(args: string[], env: Record<string, string> = {}) {
  return spawnSync(process.execPath, [CLI, ...args], {
    env: { ...process.env, DATA_DIR: server.dataDir, PORT: String(server.port), ...env },
    encoding: 'utf8',
    input: '',
    timeout: 90_000,
  });
}

describe('service and host shutdown on a real guest', () => {
  const ids: Record<string, string> = {};

  it('a SIGTERM to the server leaves the VMs running; the next server adopts them (same host boot: no autostart)', async () => {
    for (const [name, memory, order] of [
      ['guest', 256, 2],
      ['bare', 96, 1],
    ] as const) {
      const r = await server.api('POST', '/vms', { name, cpus: 1, memory });
      expect(r.status).toBe(201);
      ids[name] = r.body.vm.id;
      expect((await server.api('PUT', `/vms/${ids[name]}/autostart`, { enabled: true, order, delayS: 0 })).status).toBe(200);
    }
    expect((await server.api('POST', `/vms/${ids.guest}/iso/mount`, { isoPath })).status).toBe(200);
    const pids: number[] = [];
    for (const id of [ids.guest, ids.bare]) {
      const r = await server.api('POST', `/vms/${id}/start`);
      expect(r.status).toBe(200);
      pids.push(r.body.vm.pid);
    }
    await waitFor(() => serialLog(server.dataDir, ids.guest).includes(READY_MARKER), 90_000, 'guest READY');

    const child = server.proc!;
    await events.close();
    await server.kill('SIGTERM');
    expect(child.exitCode).toBe(0);
    expect(server.log).toMatch(/shutting down; running VMs keep running/);
    expect(qemuPidsOf(server.dataDir).sort()).toEqual([...pids].sort());
    for (const pid of pids) expect(() => process.kill(pid, 0)).not.toThrow();

    server = await new TestServer(server.dataDir).start();
    events = new EventLog(server.url);
    await events.ready;
    const vms = (await server.api('GET', '/vms')).body.vms;
    expect(vms.map((v: any) => [v.name, v.status, v.pid]).sort()).toEqual(
      [
        ['bare', 'running', pids[1]],
        ['guest', 'running', pids[0]],
      ].sort(),
    );
    expect((await server.api('GET', '/tasks')).body.tasks.filter((t: any) => t.kind === 'vm.autostart')).toEqual([]);
  });

  it('ON_HOST_SHUTDOWN=keep: the guests unit stop leaves the VMs running', () => {
    const r = admin(['host', 'shutdown-vms'], { ON_HOST_SHUTDOWN: 'keep' });
    expect(r.status).toBe(0);
    expect(r.stderr).toMatch(/left running/);
    expect(qemuPidsOf(server.dataDir)).toHaveLength(2);
  });

  it('admin host shutdown-vms: the guest shuts down by itself (its guest agent, else the ACPI button), the VM without an OS is powered off at the timeout', async () => {
    const r = admin(['host', 'shutdown-vms', '--timeout', '8']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const printed = Object.fromEntries(r.stdout.trim().split('\n').map((l) => l.split('\t').slice(0, 2)));
    expect(printed).toEqual({ guest: 'shutdown', bare: 'powered-off' });
    // The shutdown goes through the guest agent when it answers (issue 14), else the ACPI button.
    expect(serialLog(server.dataDir, ids.guest)).toMatch(new RegExp(`${POWEROFF_MARKER}|${AGENT_SHUTDOWN_MARKER}`));
    expect(serialLog(server.dataDir, ids.bare)).not.toContain(POWEROFF_MARKER);
    const task = (await server.api('GET', '/tasks')).body.tasks.find((t: any) => t.kind === 'host.shutdown-vms');
    expect(task).toMatchObject({ status: 'succeeded', result: { timeoutS: 8 } });
    const outcome = Object.fromEntries(task.result.vms.map((v: any) => [v.name, v.outcome]));
    expect(outcome).toEqual({ guest: 'shutdown', bare: 'powered-off' });
    const vms = (await server.api('GET', '/vms')).body.vms;
    expect(vms.every((v: any) => v.status === 'stopped')).toBe(true);
    expect(qemuPidsOf(server.dataDir)).toEqual([]);
    // The short-lived token the command made is revoked.
    const tokens = (await server.api('GET', '/tokens')).body.tokens.filter((x: any) => x.name === 'host-shutdown');
    expect(tokens).toHaveLength(1);
    expect(tokens[0].revokedAt).not.toBeNull();
  });
});
