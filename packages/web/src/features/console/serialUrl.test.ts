import { describe, expect, it } from 'vitest';
import { serialUrl } from './serialUrl';

describe('serialUrl', () => {
  it('points at the serial WebSocket of the VM with its ticket, wss under https', () => {
    expect(serialUrl('a b', 't+1', { protocol: 'http:', host: 'h:3000' })).toBe('ws://h:3000/api/vms/a%20b/serial?ticket=t%2B1');
    expect(serialUrl('id', 'x', { protocol: 'https:', host: 'h' })).toBe('wss://h/api/vms/id/serial?ticket=x');
  });
});
