import { describe, expect, it } from 'vitest';
import { loadConfig } from './config.js';

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
});
