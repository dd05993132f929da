import { describe, it, expect } from 'vitest';
import { CronTimetable, ScheduleError, validateSchedule } from '../../server/engine/timetable.ts';
import { LONDON, NEW_YORK, ticks, tt } from './timetable-support.ts';

function scheduleError(fn: () => void): ScheduleError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(ScheduleError);
    return err as ScheduleError;
  }
  throw new Error('expected a ScheduleError');
}

// Local days in London: 2026-03-29 is 23h long (01:00 GMT -> 02:00 BST), 2026-10-25 is 25h (02:00 BST -> 01:00 GMT).
const LONDON_SPRING = ['2026-03-29T00:00:00Z', '2026-03-29T23:00:00Z'] as const;
const LONDON_FALL = ['2026-10-24T23:00:00Z', '2026-10-26T00:00:00Z'] as const;

describe('CronTimetable in Europe/London', () => {
  it('runs a tick outside the gap once, at its real instant', () => {
    expect(ticks(tt('30 2 * * *', LONDON), ...LONDON_SPRING)).toEqual(['2026-03-29T01:30:00.000Z']);
  });

  it('shifts a tick inside the spring-forward gap later by the gap', () => {
    expect(ticks(tt('30 1 * * *', LONDON), ...LONDON_SPRING)).toEqual(['2026-03-29T01:30:00.000Z']);
  });

  it('runs a tick in the repeated hour once, at its second occurrence', () => {
    expect(ticks(tt('30 1 * * *', LONDON), ...LONDON_FALL)).toEqual(['2026-10-25T01:30:00.000Z']);
  });

  it('emits an instant reached both by shifting and for real only once', () => {
    expect(ticks(tt('0 1-3 * * *', LONDON), ...LONDON_SPRING)).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-29T02:00:00.000Z']);
  });

  it('runs a wildcard-hour schedule in both passes of the repeated hour', () => {
    const got = ticks(tt('30 * * * *', LONDON), ...LONDON_FALL);
    expect(got).toHaveLength(25);
    expect(got).toContain('2026-10-25T00:30:00.000Z');
    expect(got).toContain('2026-10-25T01:30:00.000Z');
    expect(new Set(got).size).toBe(25);
  });

  it('skips the non-existent slot of a wildcard-hour schedule instead of shifting it', () => {
    const got = ticks(tt('30 * * * *', LONDON), ...LONDON_SPRING);
    expect(got).toHaveLength(23);
    expect(got.slice(0, 3)).toEqual(['2026-03-29T00:30:00.000Z', '2026-03-29T01:30:00.000Z', '2026-03-29T02:30:00.000Z']);
  });

  it('treats a */n step over the hour field as a wildcard', () => {
    const got = ticks(tt('30 */1 * * *', LONDON), ...LONDON_FALL);
    expect(got).toHaveLength(25);
  });

  it('gives one tick a day for a daily schedule across a DST change, at the same local time', () => {
    const got = ticks(tt('0 9 * * *', LONDON), '2026-03-26T00:00:00Z', '2026-04-01T00:00:00Z');
    expect(got).toEqual([
      '2026-03-26T09:00:00.000Z',
      '2026-03-27T09:00:00.000Z',
      '2026-03-28T09:00:00.000Z',
      '2026-03-29T08:00:00.000Z',
      '2026-03-30T08:00:00.000Z',
      '2026-03-31T08:00:00.000Z',
    ]);
  });

  it('agrees between next, prev and between across both changes', () => {
    for (const cron of ['30 1 * * *', '*/20 * * * *', '0,30 1-3 * * *']) {
      for (const [from, to] of [
        ['2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z'],
        ['2026-10-24T00:00:00Z', '2026-10-27T00:00:00Z'],
      ] as const) {
        const t = tt(cron, LONDON);
        const all = t.between(new Date(from), new Date(to)).map((d) => d.getTime());
        const forward: number[] = [];
        for (let d = t.next(new Date(Date.parse(from) - 1)); d && d.getTime() < Date.parse(to); d = t.next(d)) {
          forward.push(d.getTime());
        }
        const backward: number[] = [];
        for (let d = t.prev(new Date(to)); d && d.getTime() >= Date.parse(from); d = t.prev(d)) backward.unshift(d.getTime());
        expect(forward).toEqual(all);
        expect(backward).toEqual(all);
        expect(all.every((x, i) => i === 0 || x > (all[i - 1] ?? 0))).toBe(true);
      }
    }
  });
});

describe('CronTimetable in America/New_York', () => {
  const daily = tt('30 2 * * *', NEW_YORK);

  it('shifts 02:30 on the spring-forward day (2026-03-08) to 03:30 EDT', () => {
    expect(ticks(daily, '2026-03-07T00:00:00Z', '2026-03-10T00:00:00Z')).toEqual([
      '2026-03-07T07:30:00.000Z',
      '2026-03-08T07:30:00.000Z',
      '2026-03-09T06:30:00.000Z',
    ]);
  });

  it('runs 02:30 once on the fall-back day (2026-11-01), after the repeated hour', () => {
    expect(ticks(daily, '2026-10-31T00:00:00Z', '2026-11-03T00:00:00Z')).toEqual([
      '2026-10-31T06:30:00.000Z',
      '2026-11-01T07:30:00.000Z',
      '2026-11-02T07:30:00.000Z',
    ]);
  });

  it('runs 01:30 on the fall-back day at its second occurrence (EST)', () => {
    expect(ticks(tt('30 1 * * *', NEW_YORK), '2026-11-01T00:00:00Z', '2026-11-02T00:00:00Z')).toEqual(['2026-11-01T06:30:00.000Z']);
  });
});

describe('CronTimetable basics', () => {
  it('maps a zone without DST (Asia/Kolkata, +05:30)', () => {
    const t = tt('0 0 * * *', 'Asia/Kolkata');
    expect(t.next(new Date('2026-06-01T00:00:00Z'))?.toISOString()).toBe('2026-06-01T18:30:00.000Z');
    expect(tt('30 5 * * *', 'Asia/Kolkata').next(new Date('2026-06-01T00:00:00Z'))?.toISOString()).toBe('2026-06-02T00:00:00.000Z');
  });

  it('is strict in next/prev and half-open in between', () => {
    const t = tt('0 * * * *', 'UTC');
    const at = new Date('2026-05-01T10:00:00Z');
    expect(t.next(at)?.toISOString()).toBe('2026-05-01T11:00:00.000Z');
    expect(t.prev(at)?.toISOString()).toBe('2026-05-01T09:00:00.000Z');
    expect(ticks(t, '2026-05-01T10:00:00Z', '2026-05-01T12:00:00Z')).toEqual(['2026-05-01T10:00:00.000Z', '2026-05-01T11:00:00.000Z']);
    expect(t.between(at, at)).toEqual([]);
  });

  it('supports a seconds field the schedule opts into, and rare schedules', () => {
    const secondly = new CronTimetable({ cron: '15 0 12 * * *', timezone: 'UTC', seconds: true });
    expect(secondly.next(new Date('2026-05-01T00:00:00Z'))?.toISOString()).toBe('2026-05-01T12:00:15.000Z');
    expect(tt('0 0 29 2 *', 'UTC').next(new Date('2026-01-01T00:00:00Z'))?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });

  it('enumerates every tick of a year of */5 in UTC', () => {
    const got = tt('*/5 * * * *', 'UTC').between(new Date('2026-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z'));
    expect(got).toHaveLength(105_120);
  });
});

describe('validateSchedule', () => {
  it('accepts a valid schedule', () => {
    expect(() => validateSchedule({ cron: '*/5 * * * *', timezone: LONDON })).not.toThrow();
  });

  it('names the timezone field for an unknown zone', () => {
    for (const timezone of ['Mars/Base', '', 'UTC+5']) {
      const err = scheduleError(() => validateSchedule({ cron: '0 0 * * *', timezone }));
      expect(err.name).toBe('ScheduleError');
      expect(err.field).toBe('timezone');
    }
  });

  it('names the cron field for an invalid cron', () => {
    const err = scheduleError(() => new CronTimetable({ cron: '61 * * * *', timezone: LONDON }));
    expect(err.field).toBe('cron');
    expect(err.message).toMatch(/61/);
    expect(scheduleError(() => validateSchedule({ cron: 'every day', timezone: LONDON })).field).toBe('cron');
  });

  it('refuses a six-field cron, whose first field is seconds, unless the schedule opts in', () => {
    for (const cron of ['*/10 * * * * *', '0 0 2 * * *']) {
      const err = scheduleError(() => validateSchedule({ cron, timezone: 'UTC' }));
      expect(err.field).toBe('cron');
      expect(err.message).toContain(`'${cron}' has a seconds field`);
      expect(err.message).toContain('seconds: true');
      expect(() => validateSchedule({ cron, timezone: 'UTC', seconds: true })).not.toThrow();
    }
  });

  it('rejects a cron that never fires', () => {
    expect(scheduleError(() => validateSchedule({ cron: '0 0 30 2 *', timezone: LONDON })).field).toBe('cron');
  });
});
