/**
 * The guest agent (issue 14) against real QEMU and the test guest's qemu-ga: the API shows the
 * guest's hostname and interfaces, a shutdown goes through the agent (not the ACPI button), and a
 * guest that floods its agent port is cut off while the VM keeps working.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AGENT_MARKER, AGENT_SHUTDOWN_MARKER, READY_MARKER, writeScriptDisk } from '../guest/index.js';
import { type EventLog, type TestServer, serialLog, startGuestServer, waitFor } from './harness.js';

let server: TestServer;
let events: EventLog;
let isoPath: string;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-agent-it-'));

async function vmWithScript(name: string, script: string): Promise<{ id: string; mac: string }> {
  const r = await server.api('POST', '/vms', { name, cpus: 1, memory: 128 });
  expect(r.status).toBe(201);
  const raw = path.join(tmp, `${name}.raw`);
  await writeScriptDisk(raw, script);
  const disk = path.join(server.dataDir, 'disks', `${name}.qcow2`);
  execFileSync('qemu-img', ['convert', '-q', '-f', 'raw', '-O', 'qcow2', raw, disk]);
  fs.chmodSync(disk, 0o600);
  expect((await server.api('POST', `/vms/${r.body.vm.id}/disks/attach`, { diskPath: disk, format: 'qcow2' })).status).toBe(200);
  expect((await server.api('POST', `/vms/${r.body.vm.id}/iso/mount`, { isoPath })).status).toBe(200);
  const s = await server.api('POST', `/vms/${r.body.vm.id}/start`);
  expect(s.status, JSON.stringify(s.body)).toBe(200);
  return { id: r.body.vm.id, mac: r.body.vm.mac };
}

beforeAll(async () => {
  ({ server, events, isoPath } = await startGuestServer());
}, 240_000);
afterAll(async () => {
  await events?.close();
  await server?.dispose();
  fs.rmSync(tmp, { recursive: true, force: true });
});

describe('guest agent', () => {
  it('shows the guest hostname and interfaces, and shuts the guest down through the agent', async () => {
    const vm = await vmWithScript('agented', 'ip link set eth0 up\nip addr add 10.0.2.15/24 dev eth0\necho NET_UP\n');
    await waitFor(() => serialLog(server.dataDir, vm.id).includes(AGENT_MARKER), 90_000, 'qemu-ga started');
    let agent: any = null;
    await waitFor(async () => {
      agent = (await server.api('GET', `/vms/${vm.id}/agent`)).body;
      return agent.connected === true && agent.interfaces?.some((i: any) => i.ips.includes('10.0.2.15/24'));
    }, 60_000, 'the agent reports eth0 with its address');
    expect(agent.hostname).toBe('testguest');
    expect(agent.os).toMatchObject({ name: 'QEMU Manager test guest 1' });
    expect(agent.version).toMatch(/^7\./);
    const eth0 = agent.interfaces.find((i: any) => i.name === 'eth0');
    expect(eth0.mac).toBe(vm.mac.toLowerCase());
    expect(typeof agent.lastSeen).toBe('string');

    const r = await server.api('POST', `/vms/${vm.id}/shutdown`, { mode: 'agent', timeout: 30 });
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    expect(r.body.vm.status).toBe('stopped');
    const serial = serialLog(server.dataDir, vm.id);
    expect(serial).toContain(AGENT_SHUTDOWN_MARKER);
    expect(serial).not.toContain('TESTGUEST_POWEROFF'); // the ACPI button's handler never ran
  }, 180_000);

  it('a guest that floods its agent port is cut off; the VM keeps working', async () => {
    // replaces qemu-ga by a writer of endless bytes without a delimiter or newline
    const script = [
      'port=',
      'for p in /sys/class/virtio-ports/*; do [ "$(cat $p/name)" = org.qemu.guest_agent.0 ] && port=/dev/${p##*/}; done',
      'echo FLOOD_PORT $port',
      'i=0',
      'while [ $i -lt 100 ]; do',
      '  killall qemu-ga 2>/dev/null',
      '  ( tr "\\000" x </dev/zero >$port ) 2>/dev/null',
      '  i=$((i + 1)); sleep 0.1',
      'done',
    ].join('\n');
    const vm = await vmWithScript('flooder', script);
    await waitFor(() => serialLog(server.dataDir, vm.id).includes('FLOOD_PORT /dev/'), 90_000, 'the flood started');
    await waitFor(() => /guest agent cut off/.test(server.log) && server.log.includes(vm.id), 60_000, 'the agent cut off');
    const a = await server.api('GET', `/vms/${vm.id}/agent`);
    expect(a.status).toBe(200);
    expect(a.body.connected).toBe(false);
    // the VM keeps working: pause and resume over QMP, the API answers
    expect((await server.api('POST', `/vms/${vm.id}/pause`)).body.vm.status).toBe('paused');
    expect((await server.api('POST', `/vms/${vm.id}/resume`)).body.vm.status).toBe('running');
    expect(serialLog(server.dataDir, vm.id)).toContain(READY_MARKER);
    expect((await server.api('POST', `/vms/${vm.id}/stop`)).status).toBe(200);
  }, 180_000);
});
