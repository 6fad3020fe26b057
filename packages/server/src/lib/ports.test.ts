import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isPortFree, lowestFreePort } from './ports.js';

describe('lowestFreePort', () => {
  it('returns the lowest port from 5900 that no VM has', () => {
    expect(lowestFreePort(new Set())).toBe(5900);
    expect(lowestFreePort(new Set([5900, 5901, 5903]))).toBe(5902);
    expect(lowestFreePort(new Set([5900, 5901]), 5901)).toBe(5902);
  });
  it('returns null when every port is taken', () => {
    const all = new Set(Array.from({ length: 65536 - 5900 }, (_, i) => 5900 + i));
    expect(lowestFreePort(all)).toBeNull();
  });
});

describe('isPortFree', () => {
  let srv: net.Server | undefined;
  afterEach(() => new Promise<void>((r) => (srv ? srv.close(() => r()) : r())));

  it('sees a port another program listens on as taken', async () => {
    srv = net.createServer();
    await new Promise<void>((r) => srv!.listen(0, '127.0.0.1', () => r()));
    const port = (srv.address() as net.AddressInfo).port;
    expect(await isPortFree(port)).toBe(false);
    await new Promise<void>((r) => srv!.close(() => r()));
    srv = undefined;
    expect(await isPortFree(port)).toBe(true);
  });
});
