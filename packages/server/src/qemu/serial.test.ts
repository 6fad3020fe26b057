import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { RotatingLog, SERIAL_RING_BYTES, SerialLink, readSerialLogTail } from './serial.js';

const silent = { info: () => undefined, warn: () => undefined, error: () => undefined, debug: () => undefined } as never;
let dir: string;
beforeEach(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-serial-'));
});
afterEach(() => fs.rmSync(dir, { recursive: true, force: true }));

function until(cond: () => boolean): Promise<void> {
  return new Promise((resolve) => {
    const t = setInterval(() => {
      if (cond()) {
        clearInterval(t);
        resolve();
      }
    }, 5);
  });
}

describe('RotatingLog', () => {
  it('rotates at the bound: the log and its .1 never exceed it, and together keep the newest bytes', () => {
    const file = path.join(dir, 'serial.log');
    const log = new RotatingLog(file, 1000, { truncate: true });
    let all = '';
    for (let i = 0; i < 500; i++) {
      const chunk = `${i}:${'y'.repeat(i % 37)}\n`;
      all += chunk;
      log.write(Buffer.from(chunk));
      expect(fs.statSync(file).size).toBeLessThanOrEqual(1000);
    }
    log.write(Buffer.alloc(3500, 'z')); // one chunk larger than the bound
    all += 'z'.repeat(3500);
    log.close();
    expect(fs.statSync(file).size).toBeLessThanOrEqual(1000);
    expect(fs.statSync(`${file}.1`).size).toBe(1000);
    const both = fs.readFileSync(`${file}.1`, 'utf8') + fs.readFileSync(file, 'utf8');
    expect(all.endsWith(both)).toBe(true);
    expect(readSerialLogTail(file, 1500).toString()).toBe(both.slice(-1500));
    expect(fs.readdirSync(dir).sort()).toEqual(['serial.log', 'serial.log.1']);
  });

  it('appends to an existing log unless told to start afresh; never through a symlink', () => {
    const file = path.join(dir, 'serial.log');
    fs.writeFileSync(file, 'old\n');
    const a = new RotatingLog(file, 1000, { truncate: false });
    a.write(Buffer.from('new\n'));
    a.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('old\nnew\n');
    const b = new RotatingLog(file, 1000, { truncate: true });
    b.close();
    expect(fs.readFileSync(file, 'utf8')).toBe('');
    const link = path.join(dir, 'link.log');
    fs.symlinkSync(file, link);
    expect(() => new RotatingLog(link, 1000, { truncate: false })).toThrow();
  });
});

describe('SerialLink', () => {
  it('logs, keeps the last 64 KiB for new viewers, fans out, sends input, and reconnects', async () => {
    const sockPath = path.join(dir, 'serial.sock');
    const conns: net.Socket[] = [];
    const input: Buffer[] = [];
    const server = net.createServer((c) => {
      conns.push(c);
      c.on('data', (d) => input.push(d));
    });
    await new Promise<void>((r) => server.listen(sockPath, r));
    const logPath = path.join(dir, 'serial.log');
    const link = new SerialLink(sockPath, logPath, silent, 'vm', { truncate: true });
    try {
      expect(await link.connect()).toBe(true);
      await until(() => conns.length === 1);
      const seen: Buffer[] = [];
      const off = link.subscribe((c) => seen.push(c));
      const big = Buffer.alloc(200 * 1024, 'a');
      big.write('END', big.length - 3);
      conns[0].write(big);
      await until(() => link.received === big.length);
      expect(Buffer.concat(seen).equals(big)).toBe(true);
      expect(link.backlog().length).toBe(SERIAL_RING_BYTES);
      expect(link.backlog().subarray(-3).toString()).toBe('END');
      expect(fs.statSync(logPath).size).toBe(big.length);
      off();
      expect(link.write(Buffer.from('echo hi\n'))).toBe(true);
      await until(() => Buffer.concat(input).toString() === 'echo hi\n');
      // QEMU drops the connection (as after the server's restart): the link comes back by itself.
      conns[0].destroy();
      await until(() => conns.length === 2);
      await until(() => link.connected);
      conns[1].write('again\n');
      await until(() => link.received === big.length + 6);
      expect(link.backlog().subarray(-9).toString()).toBe('ENDagain\n');
    } finally {
      link.close();
      for (const c of conns) c.destroy();
      await new Promise((r) => server.close(r));
    }
    // A link made for an adopted VM starts with the log's tail as its backlog.
    const adopted = new SerialLink(sockPath, logPath, silent, 'vm', { truncate: false });
    expect(adopted.backlog().subarray(-6).toString()).toBe('again\n');
    expect(adopted.backlog().length).toBe(SERIAL_RING_BYTES);
    adopted.close();
  });
});
