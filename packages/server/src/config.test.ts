import Fastify from 'fastify';
import { describe, expect, it } from 'vitest';
import { loadConfig, trustProxyOption, trustProxySetting } from './config.js';
import { memoryTotalLimitMiB } from './vms/context.js';

describe('loadConfig', () => {
  it('defaults to 127.0.0.1:5000 and ./data', () => {
    const c = loadConfig({}, '/srv');
    expect(c).toMatchObject({ host: '127.0.0.1', port: 5000, dataDir: '/srv/data', accel: 'auto', storageRoots: [] });
  });
  it('reads HOST, PORT, DATA_DIR, STORAGE_ROOTS and ACCEL', () => {
    const c = loadConfig({ HOST: '0.0.0.0', PORT: '6000', DATA_DIR: '/var/qm', STORAGE_ROOTS: '/a:/b/../c:', ACCEL: 'TCG' }, '/');
    expect(c).toMatchObject({ host: '0.0.0.0', port: 6000, dataDir: '/var/qm', storageRoots: ['/a', '/c'], accel: 'tcg' });
  });
  it('refuses bad values with a clear message', () => {
    expect(() => loadConfig({ PORT: '70000' })).toThrow(/PORT must be an integer/);
    expect(() => loadConfig({ ACCEL: 'hvf' })).toThrow(/ACCEL must be/);
    expect(() => loadConfig({ STORAGE_ROOTS: 'relative/dir' })).toThrow(/absolute/);
  });
  it('UI_PORT: 3001 by default, another port when set, off when empty or equal to PORT', () => {
    expect(loadConfig({}).uiPort).toBe(3001);
    expect(loadConfig({ UI_PORT: '8081' }).uiPort).toBe(8081);
    expect(loadConfig({ UI_PORT: '' }).uiPort).toBeNull();
    expect(loadConfig({ PORT: '3001' }).uiPort).toBeNull();
    expect(loadConfig({ PORT: '7000', UI_PORT: '7000' }).uiPort).toBeNull();
    expect(() => loadConfig({ UI_PORT: '0' })).toThrow(/UI_PORT must be an integer from 1 to 65535/);
    expect(() => loadConfig({ UI_PORT: 'ui' })).toThrow(/UI_PORT must be an integer/);
  });
});

describe('TRUST_PROXY', () => {
  it('is off by default and with 0/false/off; a number is hops, true is 1, else a list of addresses/CIDRs', () => {
    for (const v of [undefined, '', '0', 'false', 'off']) expect(loadConfig({ TRUST_PROXY: v }).trustProxy).toBeNull();
    expect(loadConfig({ TRUST_PROXY: '1' }).trustProxy).toEqual({ hops: 1 });
    expect(loadConfig({ TRUST_PROXY: 'true' }).trustProxy).toEqual({ hops: 1 });
    expect(loadConfig({ TRUST_PROXY: '2' }).trustProxy).toEqual({ hops: 2 });
    expect(loadConfig({ TRUST_PROXY: '10.0.0.5, 192.168.0.0/16,::1,fd00::/8' }).trustProxy).toEqual({
      proxies: ['10.0.0.5', '192.168.0.0/16', '::1', 'fd00::/8'],
    });
    for (const bad of ['yes', '11', '10.0.0.0/33', '10.0.0.0/8/1', 'fd00::/129', 'proxy.example', '-1']) {
      expect(() => loadConfig({ TRUST_PROXY: bad }), bad).toThrow(/TRUST_PROXY/);
    }
  });

  /** What Fastify makes of X-Forwarded-For under a setting, for a given peer. */
  async function clientIp(setting: string, remoteAddress: string, xff: string): Promise<string> {
    const app = Fastify({ trustProxy: trustProxyOption(trustProxySetting(setting)) });
    app.get('/', async (req) => req.ip);
    try {
      return (await app.inject({ url: '/', remoteAddress, headers: { 'x-forwarded-for': xff } })).body;
    } finally {
      await app.close();
    }
  }

  it('hops trust a proxy on this host only: a remote peer cannot forge its address', async () => {
    expect(await clientIp('1', '127.0.0.1', '10.9.9.9, 203.0.113.7')).toBe('203.0.113.7');
    expect(await clientIp('1', '::1', '203.0.113.7')).toBe('203.0.113.7');
    expect(await clientIp('1', '192.0.2.10', '203.0.113.7')).toBe('192.0.2.10');
    expect(await clientIp('true', '192.0.2.10', '203.0.113.7')).toBe('192.0.2.10');
    expect(await clientIp('2', '127.0.0.1', '10.9.9.9, 203.0.113.7, 198.51.100.1')).toBe('203.0.113.7');
    expect(await clientIp('0', '127.0.0.1', '203.0.113.7')).toBe('127.0.0.1');
  });

  it('a list trusts only its peers, and stops at the first address not in it', async () => {
    expect(await clientIp('192.0.2.0/24', '192.0.2.10', '10.9.9.9, 203.0.113.7')).toBe('203.0.113.7');
    expect(await clientIp('192.0.2.0/24', '198.51.100.1', '203.0.113.7')).toBe('198.51.100.1');
    expect(await clientIp('127.0.0.1/32', '127.0.0.2', '203.0.113.7')).toBe('127.0.0.2');
  });
});

describe('DoS bounds', () => {
  it('have defaults and refuse bad values', () => {
    const c = loadConfig({});
    expect(c.http).toEqual({
      headersTimeoutMs: 15_000,
      requestTimeoutMs: 60_000,
      keepAliveTimeoutMs: 10_000,
      uploadIdleTimeoutMs: 60_000,
      maxConnections: 1024,
      maxConnectionsPerClient: 256,
      maxSsePerClient: 8,
    });
    expect(c.totals).toEqual({ maxVmMemoryMiB: null, memoryOvercommit: null });
    expect(loadConfig({ MAX_VM_MEMORY_TOTAL: '4096', MEMORY_OVERCOMMIT: '1.5' }).totals).toEqual({ maxVmMemoryMiB: 4096, memoryOvercommit: 1.5 });
    expect(() => loadConfig({ MEMORY_OVERCOMMIT: '0' })).toThrow(/MEMORY_OVERCOMMIT/);
    expect(() => loadConfig({ MEMORY_OVERCOMMIT: '1,5' })).toThrow(/MEMORY_OVERCOMMIT/);
    expect(() => loadConfig({ MAX_VM_MEMORY_TOTAL: 'lots' })).toThrow(/MAX_VM_MEMORY_TOTAL/);
    expect(() => loadConfig({ UPLOAD_IDLE_TIMEOUT_S: '0' })).toThrow(/UPLOAD_IDLE_TIMEOUT_S/);
  });

  it('the memory total is the smaller of MAX_VM_MEMORY_TOTAL and MEMORY_OVERCOMMIT × host memory', () => {
    const limit = (env: Record<string, string>) => memoryTotalLimitMiB(loadConfig(env), 8000);
    expect(limit({})).toBeNull();
    expect(limit({ MEMORY_OVERCOMMIT: '1.5' })).toBe(12000);
    expect(limit({ MEMORY_OVERCOMMIT: '0.5', MAX_VM_MEMORY_TOTAL: '6000' })).toBe(4000);
    expect(limit({ MEMORY_OVERCOMMIT: '2', MAX_VM_MEMORY_TOTAL: '6000' })).toBe(6000);
  });
});
