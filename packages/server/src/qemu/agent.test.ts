import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { AgentConnection, AgentFramer, AgentProtocolError, AgentSession, parseInterfaces, parseOsInfo } from './agent.js';

const quiet = { info: () => {}, warn: () => {}, error: () => {}, debug: () => {} } as never;

describe('AgentFramer', () => {
  it('skips everything up to the delimiter after a resync, then splits lines', () => {
    const f = new AgentFramer(1024);
    f.resync();
    expect(f.push(Buffer.from('{"return": 1}\nstale junk'))).toEqual([]);
    expect(f.push(Buffer.concat([Buffer.from([0xff]), Buffer.from('{"return": 7}\n{"ret')]))).toEqual([{ return: 7 }]);
    expect(f.push(Buffer.from('urn": {}}\r\n'))).toEqual([{ return: {} }]);
  });
  it('cuts off a message longer than the bound, garbage and non-objects', () => {
    expect(() => new AgentFramer(1024).push(Buffer.alloc(2000, 0x61))).toThrow(AgentProtocolError);
    expect(() => new AgentFramer(1024).push(Buffer.from('not json\n'))).toThrow(AgentProtocolError);
    expect(() => new AgentFramer(1024).push(Buffer.from('[1,2]\n'))).toThrow(AgentProtocolError);
    const f = new AgentFramer(1024);
    f.resync();
    expect(() => { for (let i = 0; i < 3; i++) f.push(Buffer.alloc(500, 0x61)); }).toThrow(/before the sync delimiter/);
  });
});

describe('answer validation', () => {
  it('keeps well-formed addresses and MACs only, bounded', () => {
    const ifs = parseInterfaces([
      { name: 'eth0', 'hardware-address': '52:54:00:AA:bb:cc', 'ip-addresses': [
        { 'ip-address-type': 'ipv4', 'ip-address': '10.0.2.15', prefix: 24 },
        { 'ip-address-type': 'ipv4', 'ip-address': '999.1.1.1', prefix: 24 },
        { 'ip-address-type': 'ipv6', 'ip-address': '<script>', prefix: 64 },
      ] },
      { name: 'x\u0007'.repeat(100), 'hardware-address': 'zz' },
      'junk',
      ...Array.from({ length: 100 }, (_, i) => ({ name: `if${i}` })),
    ]);
    expect(ifs![0]).toEqual({ name: 'eth0', mac: '52:54:00:aa:bb:cc', ips: ['10.0.2.15/24'] });
    expect(ifs![1].mac).toBeNull();
    expect(ifs![1].name).toBe('x'.repeat(64));
    expect(ifs!.length).toBe(63);
    expect(parseOsInfo('nope')).toBeUndefined();
    expect(parseOsInfo({ 'pretty-name': 'P', 'version-id': '1', 'kernel-release': '6.1' })).toEqual({ name: 'P', version: '1', kernel: '6.1' });
  });
});

/** A fake agent on a unix socket: `onLine` decides what it writes back. */
function fakeAgent(onLine: (line: string, sock: net.Socket) => void): Promise<{ path: string; server: net.Server; conns: number }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'qm-agent-'));
  dirs.push(dir);
  const file = path.join(dir, 'qga.sock');
  const state = { path: file, server: net.createServer(), conns: 0 };
  state.server.on('connection', (s) => {
    state.conns++;
    let buf = '';
    s.on('error', () => {});
    s.on('data', (d) => {
      buf += d.toString('latin1').replace(/\xff/g, '');
      let nl;
      while ((nl = buf.indexOf('\n')) !== -1) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        onLine(line, s);
      }
    });
  });
  return new Promise((resolve) => state.server.listen(file, () => resolve(state)));
}

/** Answers like qemu-ga. */
function honest(line: string, s: net.Socket): void {
  const msg = JSON.parse(line) as { execute: string; arguments?: { id?: number } };
  if (msg.execute === 'guest-sync-delimited') s.write(Buffer.concat([Buffer.from('{"error": {"class": "GenericError", "desc": "stray"}}\n'), Buffer.from([0xff]), Buffer.from(`{"return": ${msg.arguments!.id}}\n`)]));
  else if (msg.execute === 'guest-get-host-name') s.write('{"return": {"host-name": "fakehost"}}\n');
  else if (msg.execute === 'guest-network-get-interfaces') s.write('{"return": [{"name": "eth0", "hardware-address": "52:54:00:01:02:03", "ip-addresses": []}]}\n');
  else if (msg.execute === 'guest-shutdown') s.end();
  else if (msg.execute === 'guest-ping' || msg.execute === 'guest-info') s.write('{"return": {"version": "7.2.0"}}\n');
  else s.write('{"error": {"class": "CommandNotFound", "desc": "no"}}\n');
}

const servers: net.Server[] = [];
/** The fake agents' socket directories, removed after each test. */
const dirs: string[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
  for (const d of dirs.splice(0)) fs.rmSync(d, { recursive: true, force: true });
});

describe('AgentConnection and AgentSession', () => {
  it('syncs past stale output and reads the guest', async () => {
    const fake = await fakeAgent(honest);
    servers.push(fake.server);
    const conn = await AgentConnection.connect(fake.path, { timeoutMs: 1000 });
    await conn.sync(1000);
    expect(await conn.call('guest-get-host-name', undefined, 1000)).toEqual({ 'host-name': 'fakehost' });
    conn.close();
    const session = new AgentSession('vm1', fake.path, quiet, { timeoutMs: 500 });
    const info = await session.info();
    expect(info).toEqual({ version: '7.2.0', hostname: 'fakehost', interfaces: [{ name: 'eth0', mac: '52:54:00:01:02:03', ips: [] }] });
    expect(session.connected).toBe(true);
    expect(session.lastSeen).not.toBeNull();
    await session.shutdown(); // no answer on success
    session.stop();
  });

  it('cuts off a flooding agent and backs off; a silent one times out', async () => {
    const flood = await fakeAgent((line, s) => {
      if (line.includes('guest-sync-delimited')) s.write(Buffer.concat([Buffer.from([0xff]), Buffer.alloc(200_000, 0x7b)]));
    });
    servers.push(flood.server);
    const session = new AgentSession('vm2', flood.path, quiet, { timeoutMs: 500, cutOffMs: 60_000 });
    await expect(session.info()).rejects.toThrow(/longer than 65536 bytes/);
    expect(session.connected).toBe(false);
    expect(session.cutOffs).toBe(1);
    // backing off: no new connection for the next request
    await expect(session.info()).rejects.toThrow(/does not answer/);
    expect(flood.conns).toBe(1);
    session.stop();

    const garbage = await fakeAgent((_line, s) => s.write('hello, I am not JSON\n'));
    servers.push(garbage.server);
    const g = new AgentSession('vm3', garbage.path, quiet, { timeoutMs: 500 });
    await expect(g.info()).rejects.toThrow(); // garbage before a delimiter is skipped: the sync times out
    g.stop();

    const liar = await fakeAgent((line, s) => {
      const m = JSON.parse(line) as { arguments?: { id?: number } };
      s.write(Buffer.concat([Buffer.from([0xff]), Buffer.from(`{"return": ${m.arguments?.id ?? 0}}\nnot json\n`)]));
    });
    servers.push(liar.server);
    const l = new AgentSession('vm4', liar.path, quiet, { timeoutMs: 500 });
    await expect(l.info()).rejects.toThrow(/not JSON/);
    expect(l.cutOffs).toBe(1);
    l.stop();
  });
});
