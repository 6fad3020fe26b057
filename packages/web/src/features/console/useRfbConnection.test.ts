import { describe, expect, it, vi } from 'vitest';

// noVNC needs a browser; the URL helper does not.
vi.mock('@novnc/novnc', () => ({ default: class {} }));
const { vncUrl } = await import('./useRfbConnection');

describe('vncUrl', () => {
  it('uses ws/wss to match the page and carries the ticket', () => {
    expect(vncUrl('abc', 't/1', { protocol: 'http:', host: '127.0.0.1:5000' })).toBe('ws://127.0.0.1:5000/api/vnc/abc?ticket=t%2F1');
    expect(vncUrl('abc', null, { protocol: 'https:', host: 'vms.example.com' })).toBe('wss://vms.example.com/api/vnc/abc');
  });
});
