/**
 * The `qemu-manager` bin as a process against a real server process and real QEMU (TCG, no OS):
 * `vm start` runs a QEMU whose pid the CLI prints, `vm stop` ends it. The other commands are
 * covered in-process (test/inprocess/cli.test.ts).
 */
import { StartEnvelope, VmEnvelope } from '@qemu-manager/contract';
import { Value } from '@sinclair/typebox/value';
import { FormatRegistry } from '@sinclair/typebox';
import { spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeDataDir, qemuPidsOf, repoRoot, TestServer } from './harness.js';

FormatRegistry.Set('uuid', (v) => /^[0-9a-f-]{36}$/i.test(v));
FormatRegistry.Set('date-time', (v) => !Number.isNaN(Date.parse(v)));

const BIN = path.join(repoRoot, 'packages/cli/bin/qemu-manager.mjs');
let server: TestServer;

function qm(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, QM_URL: server.url, QM_TOKEN: '' }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', reject);
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

beforeAll(async () => {
  server = await new TestServer(makeDataDir()).start();
});
afterAll(async () => {
  await server?.dispose();
});

describe('qemu-manager vm start/stop with real QEMU', () => {
  it('starts a QEMU by VM name and stops it', async () => {
    const made = await qm(['vm', 'create', 'cli-real', '--cpus', '1', '--memory', '64', '--json']);
    expect(made.status, made.stderr).toBe(0);
    const vm = (JSON.parse(made.stdout) as VmEnvelope).vm;

    const started = await qm(['vm', 'start', 'cli-real', '--json']);
    expect(started.status, started.stderr + server.log.slice(-2000)).toBe(0);
    const body = JSON.parse(started.stdout) as StartEnvelope;
    expect([...Value.Errors(StartEnvelope, body)].map((e) => `${e.path}: ${e.message}`)).toEqual([]);
    expect(body.vm).toMatchObject({ id: vm.id, status: 'running' });
    expect(qemuPidsOf(server.dataDir)).toContain(body.vm.pid);

    const human = await qm(['vm', 'ls']);
    expect(human.stdout).toMatch(new RegExp(`cli-real\\s+running\\s+1\\s+64 MiB\\s+\\d+\\s+${body.vm.pid}\\s+${vm.id}`));

    const stopped = await qm(['vm', 'stop', vm.id]);
    expect(stopped.status, stopped.stderr).toBe(0);
    expect(qemuPidsOf(server.dataDir)).not.toContain(body.vm.pid);
    const shown = JSON.parse((await qm(['vm', 'show', 'cli-real', '--json'])).stdout) as VmEnvelope;
    expect(shown.vm.status).toBe('stopped');
    // Stopping it again is the API's refusal: exit 1 with its code.
    const again = await qm(['vm', 'stop', 'cli-real']);
    expect(again.status).toBe(1);
    expect(again.stderr).toMatch(/\([A-Z_]+\)/);
  });
});
