import { describe, expect, it } from 'vitest';
import { matchPath, paths } from './router';

describe('matchPath', () => {
  it('matches static and param segments', () => {
    expect(matchPath('/', '/')).toEqual({});
    expect(matchPath('/disks', '/disks/')).toEqual({});
    expect(matchPath('/vms/:id', '/vms/abc')).toEqual({ id: 'abc' });
    expect(matchPath('/vms/:id/console', '/vms/a%20b/console')).toEqual({ id: 'a b' });
  });
  it('rejects other shapes', () => {
    expect(matchPath('/vms/:id', '/vms')).toBeNull();
    expect(matchPath('/vms/:id', '/vms/a/console')).toBeNull();
    expect(matchPath('/disks', '/isos')).toBeNull();
    expect(matchPath('/vms/:id', '/vms/%E0%A4%A')).toBeNull();
  });
  it('builds paths that round-trip', () => {
    expect(matchPath('/vms/:id/console', paths.console('x/y'))).toEqual({ id: 'x/y' });
  });
});
