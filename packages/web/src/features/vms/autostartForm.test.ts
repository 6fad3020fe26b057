import { describe, expect, it } from 'vitest';
import { AUTOSTART_MAX_DELAY_S, AUTOSTART_MAX_ORDER, autostartMarker, checkAutostart, draftOf } from './autostartForm';

const saved = { enabled: false, order: 0, delayS: 0 };

describe('autostart form rules', () => {
  it('takes the limits from the contract', () => {
    expect(AUTOSTART_MAX_ORDER).toBe(10000);
    expect(AUTOSTART_MAX_DELAY_S).toBe(3600);
  });

  it('an unchanged draft is valid but not dirty', () => {
    const c = checkAutostart(draftOf(saved), saved);
    expect(c).toEqual({ body: saved, orderError: null, delayError: null, dirty: false });
  });

  it('builds the body from a changed draft', () => {
    const c = checkAutostart({ enabled: true, order: ' 3 ', delayS: '20' }, saved);
    expect(c.body).toEqual({ enabled: true, order: 3, delayS: 20 });
    expect(c.dirty).toBe(true);
  });

  it('refuses orders and delays out of range, negative, fractional or empty', () => {
    for (const order of ['-1', '1.5', '', 'abc', String(AUTOSTART_MAX_ORDER + 1)]) {
      const c = checkAutostart({ enabled: true, order, delayS: '0' }, saved);
      expect(c, order).toMatchObject({ body: null, orderError: 'order', delayError: null });
    }
    for (const delayS of ['-5', '2.5', '', String(AUTOSTART_MAX_DELAY_S + 1)]) {
      const c = checkAutostart({ enabled: true, order: '0', delayS }, saved);
      expect(c, delayS).toMatchObject({ body: null, orderError: null, delayError: 'delay' });
    }
    expect(checkAutostart({ enabled: true, order: String(AUTOSTART_MAX_ORDER), delayS: String(AUTOSTART_MAX_DELAY_S) }, saved).body)
      .toEqual({ enabled: true, order: AUTOSTART_MAX_ORDER, delayS: AUTOSTART_MAX_DELAY_S });
  });

  it('the list marker shows only for enabled VMs', () => {
    expect(autostartMarker(saved)).toBeNull();
    expect(autostartMarker({ enabled: true, order: 2, delayS: 10 })).toEqual({ order: 2, delayS: 10 });
  });
});
