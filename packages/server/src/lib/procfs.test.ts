import { describe, expect, it } from 'vitest';
import { parseHostCpu, parseMeminfo, parseProcStat, parseStatusRss, readProcessUsage } from './procfs.js';
import { readStat } from './proc.js';

describe('/proc parsing (issue 14)', () => {
  it('reads utime + stime and the start time, whatever the command name holds', () => {
    const line = '4242 (qemu (x) 1) S 1 4242 4242 0 -1 4194560 100 0 0 0 1234 567 0 0 20 0 3 0 98765 1000 200 18446744073709551615 1 1 0 0 0 0 0 4096 0 0 0 0 17 1 0 0 0 0 0\n';
    expect(parseProcStat(line)).toEqual({ cpuTicks: 1801, startTime: '98765' });
    expect(parseProcStat('garbage')).toBeNull();
    expect(parseProcStat('1 (x) S 1 2')).toBeNull();
  });

  it('reads VmRSS in bytes, MemTotal/MemAvailable, and the host cpu line', () => {
    expect(parseStatusRss('Name:\tqemu\nVmRSS:\t  123456 kB\nThreads: 4\n')).toBe(123456 * 1024);
    expect(parseStatusRss('Name:\tzombie\n')).toBeNull();
    expect(parseMeminfo('MemTotal:       16000000 kB\nMemFree:  100 kB\nMemAvailable:    8000000 kB\n')).toEqual({ totalBytes: 16000000 * 1024, availableBytes: 8000000 * 1024 });
    expect(parseHostCpu('cpu  100 10 50 800 40 0 0 0 0 0\ncpu0 1 2 3 4\n')).toEqual({ busy: 160, total: 1000 });
    expect(parseHostCpu('intr 1 2 3\n')).toBeNull();
  });

  it('reads this process, and nothing for a start time that is not its own', () => {
    const st = readStat(process.pid)!;
    const u = readProcessUsage(process.pid, st.startTime)!;
    expect(u.rssBytes).toBeGreaterThan(1024 * 1024);
    expect(u.cpuSeconds).toBeGreaterThan(0);
    expect(readProcessUsage(process.pid, String(Number(st.startTime) + 1))).toBeNull();
  });
});
