import { describe, expect, it } from 'vitest';
import { isAppError } from '../lib/errors.js';
import { checkTiming, cronOf, nextDue } from './schedules.js';

const refused = (fn: () => unknown): string => {
  try {
    fn();
  } catch (err) {
    if (isAppError(err) && err.code === 'VALIDATION') return err.message;
    throw err;
  }
  throw new Error('not refused');
};

describe('schedule timing', () => {
  it('hourly, daily and weekly (Mondays) with their "at", as cron', () => {
    expect(cronOf('hourly', undefined)).toBe('0 * * * *');
    expect(cronOf('hourly', '15')).toBe('15 * * * *');
    expect(cronOf('daily', null)).toBe('0 0 * * *');
    expect(cronOf('daily', '02:30')).toBe('30 2 * * *');
    expect(cronOf('weekly', '23:05')).toBe('5 23 * * 1');
    expect(cronOf('  */10  1-5 * * MON-FRI ', undefined)).toBe('*/10 1-5 * * MON-FRI');
  });

  it('refuses an "at" of the wrong form, an "at" with cron, and what is not 5-field cron', () => {
    expect(refused(() => cronOf('hourly', '02:30'))).toBe('"at" of an hourly schedule is the minute, MM (e.g. 15), not "02:30"');
    expect(refused(() => cronOf('daily', '30'))).toBe('"at" of a daily schedule is HH:MM (e.g. 02:30), not "30"');
    expect(refused(() => cronOf('weekly', '24:00'))).toBe('"at" of a weekly schedule is HH:MM (e.g. 02:30), not "24:00"');
    expect(refused(() => cronOf('0 2 * * *', '02:00'))).toMatch(/^"at" goes with hourly, daily or weekly only/);
    expect(refused(() => cronOf('0 0 2 * * *', undefined))).toMatch(/a cron expression of 5 fields/); // seconds field
    expect(refused(() => cronOf('@daily', undefined))).toMatch(/a cron expression of 5 fields/);
    expect(refused(() => cronOf('monthly', undefined))).toMatch(/a cron expression of 5 fields/);
    expect(refused(() => checkTiming('61 * * * *', undefined))).toBe('every: "61 * * * *" is not a valid cron expression: Invalid value for minute: 61');
    expect(refused(() => checkTiming('0 0 31 2 *', undefined))).toBe('every: "0 0 31 2 *" never runs (no date matches it)');
  });

  it('the next due time, strictly after the reference, in the time zone given', () => {
    const wed = new Date('2024-03-06T12:00:00Z');
    expect(nextDue('hourly', '15', wed, 'UTC')?.toISOString()).toBe('2024-03-06T12:15:00.000Z');
    expect(nextDue('daily', '02:30', wed, 'UTC')?.toISOString()).toBe('2024-03-07T02:30:00.000Z');
    expect(nextDue('weekly', '02:30', wed, 'UTC')?.toISOString()).toBe('2024-03-11T02:30:00.000Z'); // a Monday
    expect(nextDue('*/20 * * * *', null, wed, 'UTC')?.toISOString()).toBe('2024-03-06T12:20:00.000Z');
    // Exactly on a due time: the next one.
    expect(nextDue('daily', '12:00', wed, 'UTC')?.toISOString()).toBe('2024-03-07T12:00:00.000Z');
    // Server local time: 02:30 in Berlin is 01:30 UTC in winter, 00:30 UTC in summer.
    expect(nextDue('daily', '02:30', wed, 'Europe/Berlin')?.toISOString()).toBe('2024-03-07T01:30:00.000Z');
    expect(nextDue('daily', '02:30', new Date('2024-07-01T12:00:00Z'), 'Europe/Berlin')?.toISOString()).toBe('2024-07-02T00:30:00.000Z');
  });
});
