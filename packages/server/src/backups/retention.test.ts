/** selectRetained lives in the contract (the UI previews with it); its tests run with the server units, which the test type-check covers. */
import { describe, expect, it } from 'vitest';
import { selectRetained } from '@qemu-manager/contract';

/** Backups named by their own UTC time (`2024-03-05 12:00` → id `03-05T12:00`), any order. */
const at = (...times: string[]) => times.map((t) => ({ id: t.slice(5).replace(' ', 'T'), createdAt: `${t.replace(' ', 'T')}:00.000Z` }));

describe('selectRetained (Proxmox prune rules)', () => {
  it('no rule set keeps everything, newest first', () => {
    const r = selectRetained(at('2024-01-01 10:00', '2024-01-03 10:00', '2024-01-02 10:00'), {}, 'UTC');
    expect(r).toEqual({
      keep: ['01-03T10:00', '01-02T10:00', '01-01T10:00'],
      prune: [],
      reasons: expect.objectContaining({ '01-01T10:00': ['no retention rule is set: every backup is kept'] }),
    });
  });

  it('keepLast 2 of 4: the two newest stay', () => {
    const r = selectRetained(at('2024-01-01 10:00', '2024-01-01 11:00', '2024-01-01 12:00', '2024-01-01 13:00'), { keepLast: 2 }, 'UTC');
    expect(r.keep).toEqual(['01-01T13:00', '01-01T12:00']);
    expect(r.prune).toEqual(['01-01T11:00', '01-01T10:00']);
    expect(r.reasons['01-01T13:00']).toEqual(['keepLast 1/2']);
    expect(r.reasons['01-01T10:00']).toEqual(['no rule keeps it']);
  });

  it('keepDaily keeps the newest of each day; days without a backup do not count', () => {
    // May 1 08:00, May 2 08:00 and 11:00, (nothing on May 3), May 4 09:00, May 5 10:00; keepDaily 4.
    const r = selectRetained(at('2024-05-01 08:00', '2024-05-02 08:00', '2024-05-02 11:00', '2024-05-04 09:00', '2024-05-05 10:00'), { keepDaily: 4 }, 'UTC');
    expect(r.keep).toEqual(['05-05T10:00', '05-04T09:00', '05-02T11:00', '05-01T08:00']);
    expect(r.prune).toEqual(['05-02T08:00']);
    expect(r.reasons['05-02T08:00']).toEqual(['keepDaily: the newer backup 05-02T11:00 is kept for 2024-05-02']);
    expect(r.reasons['05-02T11:00']).toEqual(['keepDaily 3/4: 2024-05-02']);
  });

  it('a period covered by an earlier rule is skipped (not counted) by the later one', () => {
    // keepLast 1 keeps Mar 5 10:00; keepDaily 2 then skips Mar 5 (covered) and keeps Mar 4 and Mar 3.
    const r = selectRetained(at('2024-03-05 10:00', '2024-03-05 08:00', '2024-03-04 10:00', '2024-03-03 10:00', '2024-03-02 10:00'), { keepLast: 1, keepDaily: 2 }, 'UTC');
    expect(r.keep).toEqual(['03-05T10:00', '03-04T10:00', '03-03T10:00']);
    expect(r.prune).toEqual(['03-05T08:00', '03-02T10:00']);
    expect(r.reasons['03-05T08:00']).toEqual(['no rule keeps it']);
  });

  it('a backup a rule prunes (an older one of a period it keeps) is not looked at again by later rules', () => {
    // keepDaily 1 keeps Mon Mar 11 10:00 and prunes Mar 11 08:00; keepWeekly 2: week 11 is covered, so
    // it keeps the newest of the week before (Sun Mar 10), not Mar 11 08:00.
    const r = selectRetained(at('2024-03-11 10:00', '2024-03-11 08:00', '2024-03-10 22:00', '2024-03-09 22:00'), { keepDaily: 1, keepWeekly: 2 }, 'UTC');
    expect(r.keep).toEqual(['03-11T10:00', '03-10T22:00']);
    expect(r.prune).toEqual(['03-11T08:00', '03-09T22:00']);
    expect(r.reasons['03-11T08:00']).toEqual(['keepDaily: the newer backup 03-11T10:00 is kept for 2024-03-11']);
    expect(r.reasons['03-10T22:00']).toEqual(['keepWeekly 1/2: 2024-W10']);
    expect(r.reasons['03-09T22:00']).toEqual(['keepWeekly: the newer backup 03-10T22:00 is kept for 2024-W10']);
  });

  it('the hourly example of the docs: backups at 01:00, 02:00 and 12:00 each day, keepHourly 4 then keepDaily 3', () => {
    const days = ['2024-06-01', '2024-06-02', '2024-06-03', '2024-06-04', '2024-06-05'];
    const list = at(...days.flatMap((d) => [`${d} 01:00`, `${d} 02:00`, `${d} 12:00`]));
    const hourly = selectRetained(list, { keepHourly: 4 }, 'UTC');
    expect(hourly.keep).toEqual(['06-05T12:00', '06-05T02:00', '06-05T01:00', '06-04T12:00']);
    // keepDaily: June 5 and June 4 are covered by the hourly picks; June 4's 02:00 and 01:00 are
    // skipped, so the three days kept are June 3, 2 and 1 (their newest, 12:00).
    const both = selectRetained(list, { keepHourly: 4, keepDaily: 3 }, 'UTC');
    expect(both.keep).toEqual(['06-05T12:00', '06-05T02:00', '06-05T01:00', '06-04T12:00', '06-03T12:00', '06-02T12:00', '06-01T12:00']);
    expect(both.prune).toEqual(['06-04T02:00', '06-04T01:00', '06-03T02:00', '06-03T01:00', '06-02T02:00', '06-02T01:00', '06-01T02:00', '06-01T01:00']);
  });

  it('ISO weeks: Monday to Sunday, and the week-numbering year at the turn of the year', () => {
    // Thu 2020-12-31 and Fri 2021-01-01 are both in 2020-W53; Mon 2021-01-04 starts 2021-W01.
    const r = selectRetained(at('2020-12-31 12:00', '2021-01-01 12:00', '2021-01-04 12:00', '2020-12-27 12:00'), { keepWeekly: 3 }, 'UTC');
    expect(r.keep).toEqual(['01-04T12:00', '01-01T12:00', '12-27T12:00']);
    expect(r.prune).toEqual(['12-31T12:00']);
    expect(r.reasons['01-04T12:00']).toEqual(['keepWeekly 1/3: 2021-W01']);
    expect(r.reasons['01-01T12:00']).toEqual(['keepWeekly 2/3: 2020-W53']);
    expect(r.reasons['12-27T12:00']).toEqual(['keepWeekly 3/3: 2020-W52']); // a Sunday ends its week
    // Mon 2018-12-31 is in 2019-W01.
    expect(selectRetained(at('2018-12-31 12:00'), { keepWeekly: 1 }, 'UTC').reasons['12-31T12:00']).toEqual(['keepWeekly 1/1: 2019-W01']);
  });

  it('keepMonthly, and every rule in its order, whatever the input order', () => {
    const list = at('2024-01-15 12:00', '2024-01-31 12:00', '2024-02-10 12:00', '2024-03-01 12:00', '2024-03-02 12:00', '2023-12-24 12:00');
    const shuffled = [list[3], list[0], list[5], list[2], list[4], list[1]];
    const r = selectRetained(shuffled, { keepLast: 1, keepMonthly: 2 }, 'UTC');
    // keepLast keeps Mar 2; March is covered; keepMonthly keeps Feb 10 and Jan 31.
    expect(r.keep).toEqual(['03-02T12:00', '02-10T12:00', '01-31T12:00']);
    expect(r.prune).toEqual(['03-01T12:00', '01-15T12:00', '12-24T12:00']);
    expect(r.reasons['01-15T12:00']).toEqual(['keepMonthly: the newer backup 01-31T12:00 is kept for 2024-01']);
  });

  it('all five rules together', () => {
    // One backup every 6 hours for 40 days.
    const start = Date.UTC(2024, 0, 1, 0, 0);
    const list = Array.from({ length: 160 }, (_, i) => ({ id: `b${i}`, createdAt: new Date(start + i * 6 * 3_600_000).toISOString() }));
    const r = selectRetained(list, { keepLast: 3, keepHourly: 2, keepDaily: 3, keepWeekly: 2, keepMonthly: 2 }, 'UTC');
    // keepLast: b159, b158, b157 (Feb 9 18:00, 12:00, 06:00); keepHourly: the next two hours, b156
    // (Feb 9 00:00) and b155 (Feb 8 18:00); keepDaily: Feb 9 and 8 are covered: Feb 7, 6, 5 (b151,
    // b147, b143); keepWeekly: 2024-W06 (Feb 5–11) is covered: W05 (Jan 29–Feb 4) → Feb 4 18:00 (b139),
    // W04 → Jan 28 18:00 (b111); keepMonthly: February and January are covered: December has none.
    expect(r.keep).toEqual(['b159', 'b158', 'b157', 'b156', 'b155', 'b151', 'b147', 'b143', 'b139', 'b111']);
    expect(r.prune).toHaveLength(150);
    expect(new Set([...r.keep, ...r.prune]).size).toBe(160);
  });

  it('periods are read in the given time zone (the host local zone by default)', () => {
    // 23:30 UTC on Mar 10 and 00:30 UTC on Mar 11 are two days in UTC, one evening in New York.
    const list = [
      { id: 'late', createdAt: '2024-03-11T00:30:00Z' },
      { id: 'early', createdAt: '2024-03-10T23:30:00Z' },
    ];
    expect(selectRetained(list, { keepDaily: 2 }, 'UTC').keep).toEqual(['late', 'early']);
    expect(selectRetained(list, { keepDaily: 2 }, 'America/New_York')).toMatchObject({ keep: ['late'], prune: ['early'] });
    expect(selectRetained(list, { keepDaily: 2 }, 'Asia/Tokyo').keep).toEqual(['late']); // 08:30 and 09:30 on Mar 11
  });

  it('an invalid time is refused', () => {
    expect(() => selectRetained([{ id: 'x', createdAt: 'yesterday' }], { keepLast: 1 })).toThrow(/invalid createdAt/);
  });
});
