import { describe, expect, it } from 'vitest';
import { vncFromArgv } from './supervisor.js';

describe('vncFromArgv (how an adopted QEMU serves VNC)', () => {
  const argv = (...vnc: string[]) => ['qemu-system-x86_64', '-name', 'x', ...vnc, '-qmp', 'unix:/r/qmp.sock,server=on,wait=off'];

  it('reads a unix socket', () => {
    expect(vncFromArgv(argv('-vnc', 'unix:/data/run/abc/qemu/vnc.sock'))).toEqual({ socket: true });
    expect(vncFromArgv(argv('-vnc', 'unix:/data/run/abc/qemu/vnc.sock,lossy=on'))).toEqual({ socket: true });
  });

  it('reads a TCP display on loopback (with or without options)', () => {
    expect(vncFromArgv(argv('-vnc', '127.0.0.1:7'))).toEqual({ display: 7 });
    expect(vncFromArgv(argv('-vnc', '127.0.0.1:12,share=force-shared'))).toEqual({ display: 12 });
    expect(vncFromArgv(argv('-vnc', ':3'))).toEqual({ display: 3 });
    expect(vncFromArgv(argv('-vnc', '[::1]:4'))).toEqual({ display: 4 });
  });

  it('answers null for none, a missing value, or no -vnc at all', () => {
    expect(vncFromArgv(argv('-vnc', 'none'))).toBeNull();
    expect(vncFromArgv(argv('-vnc', 'unix:'))).toBeNull();
    expect(vncFromArgv(['qemu-system-x86_64', '-vnc'])).toBeNull();
    expect(vncFromArgv(argv())).toBeNull();
  });

  it('uses the last -vnc (as QEMU does) and does not take a -qmp unix: for VNC', () => {
    expect(vncFromArgv(argv('-vnc', 'unix:/a/vnc.sock', '-vnc', '127.0.0.1:2'))).toEqual({ display: 2 });
    expect(vncFromArgv(['qemu-system-x86_64', '-qmp', 'unix:/a/qmp.sock', '-vnc', '127.0.0.1:1'])).toEqual({ display: 1 });
  });
});
