import { describe, expect, it } from 'vitest';
import { orderMenuItems, type MenuItem } from './Menu';

const item = (key: string, danger = false): MenuItem => ({ key, label: key, onSelect: () => {}, danger });

describe('orderMenuItems', () => {
  it('puts destructive items last behind one separator', () => {
    const out = orderMenuItems([item('stop', true), item('reboot'), item('reset', true), item('settings')]);
    expect(out.map((i) => i.key)).toEqual(['reboot', 'settings', 'stop', 'reset']);
    expect(out.map((i) => !!i.separator)).toEqual([false, false, true, false]);
  });
  it('adds no separator when everything is destructive', () => {
    expect(orderMenuItems([item('delete', true)])[0]?.separator).toBe(false);
  });
});
