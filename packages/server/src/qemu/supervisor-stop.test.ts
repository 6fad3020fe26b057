/**
 * The power-off escalation of the real Supervisor: a QEMU that ignores `quit` gets SIGTERM, and
 * one that ignores SIGTERM too gets SIGKILL; stop() resolves only once the process is gone. The
 * QEMU is a small node script standing in for it: its argv carries `-uuid <vm id>` (what adopt
 * checks), it serves QMP on the VM's socket in the run dir, and it records what it was sent.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { Logger } from '../lib/log.js';
import { StorageRoots } from '../lib/storage.js';
import { IdentityPool } from './identity.js';
import { runPaths } from './rundir.js';
import { Supervisor } from './supervisor.js';

/** A QEMU stand-in: QMP greeting, qmp_capabilities and query-status answered; quit and SIGTERM ignored (and recorded). */
const STAND_IN = `
const fs = require('node:fs');
const net = require('node:net');
const [socket, record] = process.argv.slice(-2);
const note = (what) => fs.appendFileSync(record, what + '\\n');
process.on('SIGTERM', () => note('SIGTERM'));
const server = net.createServer((c) => {
  c.write(JSON.stringify({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 0 }, package: 'stand-in' }, capabilities: [] } }) + '\\r\\n');
  let buf = '';
  c.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      note(msg.execute);
      if (msg.execute === 'quit') continue; // ignored: no answer, no exit
      const ret = msg.execute === 'query-status' ? { status: 'running', running: true, singlestep: false } : {};
      c.write(JSON.stringify({ return: ret, id: msg.id }) + '\\r\\n');
    }
  });
  c.on('error', () => {});
});
server.listen(socket, () => note('listening'));
setInterval(() => {}, 1000);
`;

const log = (lines: string[]): Logger => ({
  info: (_o, m) => lines.push(`info ${m ?? ''}`),
  warn: (_o, m) => lines.push(`warn ${m ?? ''}`),
  error: (_o, m) => lines.push(`error ${m ?? ''}`),
});

function waitFor(cond: () => boolean, ms: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const end = Date.now() + ms;
    const tick = () => (cond() ? resolve() : Date.now() > end ? reject(new Error('timed out waiting')) : setTimeout(tick, 10));
    tick();
  });
}

describe('Supervisor.stop escalation (regression: quit ignored by QEMU)', () => {
  let dir: string | undefined;
  let child: ChildProcess | undefined;
  afterEach(() => {
    if (child?.pid !== undefined && child.exitCode === null && child.signalCode === null) process.kill(child.pid, 'SIGKILL');
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
  });

  it('a QEMU that ignores quit and SIGTERM is killed (SIGKILL) and stop() resolves once it is gone', async () => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-sup-'));
    const runRoot = path.join(dir, 'run');
    const vmId = crypto.randomUUID();
    const paths = runPaths(path.join(runRoot, vmId));
    fs.mkdirSync(paths.dir, { recursive: true, mode: 0o711 });
    const script = path.join(dir, 'stand-in.cjs');
    fs.writeFileSync(script, STAND_IN);
    const record = path.join(dir, 'record.txt');
    fs.writeFileSync(record, '');
    const proc = spawn(process.execPath, [script, '-name', 'stand-in', '-uuid', vmId, paths.qmpSocket, record], { stdio: 'ignore' });
    child = proc;
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((r) => proc.once('exit', (code, signal) => r({ code, signal })));
    await waitFor(() => fs.readFileSync(record, 'utf8').includes('listening'), 10_000);

    const lines: string[] = [];
    const logger = log(lines);
    // QEMU_USER='' keeps QEMU as the server's own user: no pool user is claimed or created.
    const pool = IdentityPool.fromSetting('', logger, { dataDir: dir, claimsDir: path.join(dir, 'claims') });
    const sup = new Supervisor(runRoot, {}, logger, pool, { storage: new StorageRoots([path.join(dir, 'disks')]), vncTcp: false });
    const exits: string[] = [];
    sup.on('exit', (id) => exits.push(id));

    expect(await sup.adopt(vmId, proc.pid!, null)).toBe('running');
    expect(sup.process(vmId)?.pid).toBe(proc.pid);

    await sup.stop(vmId);
    // stop() resolved: the process is gone, killed by SIGKILL after it ignored quit and SIGTERM.
    expect(await exited).toEqual({ code: null, signal: 'SIGKILL' });
    const got = fs.readFileSync(record, 'utf8').split('\n').filter(Boolean);
    expect(got).toEqual(['listening', 'qmp_capabilities', 'query-status', 'quit', 'SIGTERM']);
    expect(lines).toContain('warn QEMU ignored quit; sending SIGTERM');
    expect(exits).toEqual([vmId]);
    expect(sup.process(vmId)).toBeNull();
  }, 30_000);
});
