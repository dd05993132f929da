import { describe, it, expect } from 'vitest';
import { CronExpressionParser } from 'cron-parser';
import { CronTimetable, ScheduleError, validateSchedule } from '../../server/engine/timetable.ts';

const LONDON = 'Europe/London';
const NEW_YORK = 'America/New_York';

function tt(cron: string, timezone: string): CronTimetable {
  return new CronTimetable({ cron, timezone });
}

function ticks(t: CronTimetable, from: string, to: string): string[] {
  return t.between(new Date(from), new Date(to)).map((d) => d.toISOString());
}

const iso = (d: Date | null | undefined): string | undefined => d?.toISOString();

/** The first `n` ticks of a DAG starting at `start` with catchup: Airflow's next_dagrun_info, run after run. */
function fromStart(cron: string, timezone: string, start: string, n: number): (string | undefined)[] {
  const t = tt(cron, timezone);
  const out = [t.first(new Date(start))];
  while (out.length < n) out.push(out.at(-1) ? t.next(out.at(-1)!) : null);
  return out.map(iso);
}

/** The latest interval complete at `now`: what a DAG without catchup runs (Airflow's _skip_to_latest). */
function latestInterval(t: CronTimetable, now: string): [string | undefined, string | undefined] {
  const end = t.prev(new Date(Date.parse(now) + 1));
  return [iso(end && t.prev(end)), iso(end)];
}

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

  it('supports a seconds field and rare schedules', () => {
    expect(tt('15 0 12 * * *', 'UTC').next(new Date('2026-05-01T00:00:00Z'))?.toISOString()).toBe('2026-05-01T12:00:15.000Z');
    expect(tt('0 0 29 2 *', 'UTC').next(new Date('2026-01-01T00:00:00Z'))?.toISOString()).toBe('2028-02-29T00:00:00.000Z');
  });

  it('enumerates every tick of a year of */5 in UTC', () => {
    const got = tt('*/5 * * * *', 'UTC').between(new Date('2026-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z'));
    expect(got).toHaveLength(105_120);
  });
});

// Airflow's CronDataIntervalTimetable cases that concern DST, with the instants they assert.
// Airflow 3.x: airflow-core/tests/unit/timetables/test_interval_timetable.py. An interval list
// [a, b], [b, c], [c, d] from a start date with catchup is the tick chain a, b, c, d here.
// Airflow 2.x and 3.x share the algorithm (timetables/_cron.py, croniter on naive wall time,
// make_aware with fold=1); these follow 3.x, whose _get_prev steps back until strictly before
// the given time (apache/airflow#70089), as prev() does here.
describe("Airflow's own DST cases", () => {
  const ZURICH = 'Europe/Zurich';
  const LOS_ANGELES = 'America/Los_Angeles';

  it('TestCronIntervalDst::test_entering_exact: 0 3 * * * Zurich into CEST, 2023-03-26', () => {
    expect(fromStart('0 3 * * *', ZURICH, '2023-03-24T00:00:00Z', 4)).toEqual([
      '2023-03-24T02:00:00.000Z',
      '2023-03-25T02:00:00.000Z',
      '2023-03-26T01:00:00.000Z',
      '2023-03-27T01:00:00.000Z',
    ]);
  });

  it('TestCronIntervalDst::test_entering_skip: 0 2 * * * Zurich, 02:00 does not exist, runs at 03:00 CEST', () => {
    expect(fromStart('0 2 * * *', ZURICH, '2023-03-24T00:00:00Z', 4)).toEqual([
      '2023-03-24T01:00:00.000Z',
      '2023-03-25T01:00:00.000Z',
      '2023-03-26T01:00:00.000Z',
      '2023-03-27T00:00:00.000Z',
    ]);
  });

  it('TestCronIntervalDst::test_exiting_exact: 0 3 * * * Zurich out of CEST, 2023-10-29', () => {
    expect(fromStart('0 3 * * *', ZURICH, '2023-10-27T00:00:00Z', 4)).toEqual([
      '2023-10-27T01:00:00.000Z',
      '2023-10-28T01:00:00.000Z',
      '2023-10-29T02:00:00.000Z',
      '2023-10-30T02:00:00.000Z',
    ]);
  });

  it('TestCronIntervalDst::test_exiting_fold: 0 2 * * * Zurich, the repeated 02:00 runs at its second pass', () => {
    expect(fromStart('0 2 * * *', ZURICH, '2023-10-27T00:00:00Z', 4)).toEqual([
      '2023-10-27T00:00:00.000Z',
      '2023-10-28T00:00:00.000Z',
      '2023-10-29T01:00:00.000Z',
      '2023-10-30T01:00:00.000Z',
    ]);
  });

  it('TestCronIntervalDstNonTrivial::test_7_to_8_entering (apache/airflow#7999): 0 7-8 * * * Los Angeles', () => {
    expect(fromStart('0 7-8 * * *', LOS_ANGELES, '2020-03-07T00:00:00Z', 4)).toEqual([
      '2020-03-07T15:00:00.000Z',
      '2020-03-07T16:00:00.000Z',
      '2020-03-08T14:00:00.000Z',
      '2020-03-08T15:00:00.000Z',
    ]);
  });

  it('TestCronIntervalDstNonTrivial::test_7_and_9_entering: 0 7,9 * * * Los Angeles', () => {
    expect(fromStart('0 7,9 * * *', LOS_ANGELES, '2020-03-07T00:00:00Z', 4)).toEqual([
      '2020-03-07T15:00:00.000Z',
      '2020-03-07T17:00:00.000Z',
      '2020-03-08T14:00:00.000Z',
      '2020-03-08T16:00:00.000Z',
    ]);
  });

  it('test_fold_scheduling: */30 * * * * Zurich runs both passes of the repeated hour', () => {
    expect(fromStart('*/30 * * * *', ZURICH, '2023-10-28T23:30:00Z', 6)).toEqual([
      '2023-10-28T23:30:00.000Z', // 01:30 CEST
      '2023-10-29T00:00:00.000Z', // 02:00 CEST
      '2023-10-29T00:30:00.000Z', // 02:30 CEST
      '2023-10-29T01:00:00.000Z', // 02:00 CET, the repeated hour
      '2023-10-29T01:30:00.000Z', // 02:30 CET
      '2023-10-29T02:00:00.000Z', // 03:00 CET
    ]);
  });

  // test_cron_next_dagrun_info_no_catchup_dst (and test_cron_infer_manual_data_interval_dst, same
  // data): without catchup the run is the latest complete interval, never one still under way.
  it.each([
    ['new-york-dst-gap', '0 2 * * *', 'America/New_York', '2024-03-10T07:30:00Z', '2024-03-09T07:00:00.000Z', '2024-03-10T07:00:00.000Z'],
    ['new-york-dst-gap-exact', '0 2 * * *', 'America/New_York', '2024-03-10T07:00:00Z', '2024-03-09T07:00:00.000Z', '2024-03-10T07:00:00.000Z'],
    ['zurich-dst-gap', '0 2 * * *', ZURICH, '2023-03-26T01:30:00Z', '2023-03-25T01:00:00.000Z', '2023-03-26T01:00:00.000Z'],
    ['lord-howe-half-hour-dst-gap', '0 2 * * *', 'Australia/Lord_Howe', '2024-10-05T15:30:00Z', '2024-10-04T15:30:00.000Z', '2024-10-05T15:30:00.000Z'],
    ['new-york-fold', '0 1 * * *', 'America/New_York', '2024-11-03T05:30:00Z', '2024-11-01T05:00:00.000Z', '2024-11-02T05:00:00.000Z'],
  ])('test_cron_next_dagrun_info_no_catchup_dst[%s]', (_id, cron, zone, now, start, end) => {
    expect(latestInterval(tt(cron, zone), now)).toEqual([start, end]);
  });

  it.each([
    ['new-york-dst-gap', '0 2 * * *', 'America/New_York', '2024-03-10T07:00:00.000Z', '2024-03-11T06:00:00.000Z'],
    ['zurich-dst-gap', '0 2 * * *', ZURICH, '2023-03-26T01:00:00.000Z', '2023-03-27T00:00:00.000Z'],
  ])('test_cron_next_dagrun_info_after_dst_manual_run[%s]: the interval after is not skipped', (_id, cron, zone, start, end) => {
    expect(iso(tt(cron, zone).next(new Date(start)))).toBe(end);
  });

  // Airflow 1.10-2.x tests/models/test_dag.py::TestDag (DAG.following_schedule and
  // previous_schedule, removed in 3.x with those methods; the timetable keeps their answers).
  it('test_following_previous_schedule: */5 * * * * Zurich from 02:55 CEST on 2018-10-28', () => {
    const t = tt('*/5 * * * *', ZURICH);
    const start = new Date('2018-10-28T00:55:00Z'); // 02:55 CEST
    expect(iso(t.next(start))).toBe('2018-10-28T01:00:00.000Z'); // 02:00 CET
    expect(iso(t.prev(start))).toBe('2018-10-28T00:50:00.000Z'); // 02:50 CEST
    expect(iso(t.prev(new Date('2018-10-28T01:00:00Z')))).toBe('2018-10-28T00:55:00.000Z');
  });

  it('test_following_previous_schedule_daily_dag_cest_to_cet: 0 3 * * * Zurich', () => {
    const t = tt('0 3 * * *', ZURICH);
    const start = new Date('2018-10-27T01:00:00Z'); // 03:00 CEST
    expect(iso(t.prev(start))).toBe('2018-10-26T01:00:00.000Z');
    expect(iso(t.next(start))).toBe('2018-10-28T02:00:00.000Z'); // 03:00 CET
    expect(iso(t.prev(new Date('2018-10-28T02:00:00Z')))).toBe('2018-10-27T01:00:00.000Z');
  });

  it('test_following_previous_schedule_daily_dag_cet_to_cest: 0 3 * * * Zurich', () => {
    const t = tt('0 3 * * *', ZURICH);
    const start = new Date('2018-03-25T00:00:00Z'); // 02:00, which does not exist, read before the change
    expect(iso(t.prev(start))).toBe('2018-03-24T02:00:00.000Z'); // 03:00 CET
    expect(iso(t.next(start))).toBe('2018-03-25T01:00:00.000Z'); // 03:00 CEST
    expect(iso(t.prev(new Date('2018-03-25T01:00:00Z')))).toBe('2018-03-24T02:00:00.000Z');
  });
});

describe('several cron times in one spring-forward gap', () => {
  // Airflow's _get_next searches on from the moved wall time, so only the first runs.
  it('runs only the first of */15 1 * * * in London on 2026-03-29, at 02:00 BST', () => {
    expect(ticks(tt('*/15 1 * * *', LONDON), '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-28T01:00:00.000Z',
      '2026-03-28T01:15:00.000Z',
      '2026-03-28T01:30:00.000Z',
      '2026-03-28T01:45:00.000Z',
      '2026-03-29T01:00:00.000Z', // 01:00 moved to 02:00 BST; 01:15, 01:30 and 01:45 do not run
      '2026-03-30T00:00:00.000Z',
      '2026-03-30T00:15:00.000Z',
      '2026-03-30T00:30:00.000Z',
      '2026-03-30T00:45:00.000Z',
    ]);
  });

  it('runs only the first of 0,30 1 * * * in London on 2026-03-29', () => {
    expect(ticks(tt('0,30 1 * * *', LONDON), '2026-03-28T00:00:00Z', '2026-03-31T00:00:00Z')).toEqual([
      '2026-03-28T01:00:00.000Z',
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:00:00.000Z',
      '2026-03-30T00:00:00.000Z',
      '2026-03-30T00:30:00.000Z',
    ]);
  });

  it('keeps a moved tick that lands on a later cron time once, and searches on from it', () => {
    // 01:15 moves to 02:15 BST, which is also a cron time; 01:45 is skipped; 02:45 runs.
    expect(ticks(tt('15,45 0-3 * * *', LONDON), '2026-03-29T00:00:00Z', '2026-03-29T03:00:00Z')).toEqual([
      '2026-03-29T00:15:00.000Z',
      '2026-03-29T00:45:00.000Z',
      '2026-03-29T01:15:00.000Z',
      '2026-03-29T01:45:00.000Z',
      '2026-03-29T02:15:00.000Z',
      '2026-03-29T02:45:00.000Z',
    ]);
  });

  it('moves a bi-hourly tick too: 0 */2 * * * is not an every-hour schedule (Airflow, apache/airflow#30195)', () => {
    expect(ticks(tt('0 */2 * * *', NEW_YORK), '2026-03-08T04:00:00Z', '2026-03-08T10:00:00Z')).toEqual([
      '2026-03-08T05:00:00.000Z', // 00:00 EST
      '2026-03-08T07:00:00.000Z', // 02:00 does not exist: 03:00 EDT
      '2026-03-08T08:00:00.000Z', // 04:00 EDT
    ]);
  });
});

describe('start dates, compared in wall-clock time (Airflow _align_to_next)', () => {
  const daily = tt('30 1 * * *', LONDON);
  const first = (t: CronTimetable, start: string) => iso(t.first(new Date(start)));

  it('skips the second pass of the repeated hour for a start inside its first pass', () => {
    expect(first(daily, '2026-10-25T00:45:00Z')).toBe('2026-10-26T01:30:00.000Z'); // 01:45 BST is after 01:30
    expect(first(daily, '2026-10-25T00:30:00Z')).toBe('2026-10-26T01:30:00.000Z'); // 01:30 BST is not the tick
    expect(first(daily, '2026-10-25T00:15:00Z')).toBe('2026-10-25T01:30:00.000Z'); // 01:15 BST is before 01:30
  });

  it('takes the tick itself, or the next one, for a start in the second pass', () => {
    expect(first(daily, '2026-10-25T01:15:00Z')).toBe('2026-10-25T01:30:00.000Z');
    expect(first(daily, '2026-10-25T01:30:00Z')).toBe('2026-10-25T01:30:00.000Z');
  });

  it('skips a moved tick for a start after its cron time on the wall clock', () => {
    // 02:15 BST is after 01:30, though before the moved tick at 02:30 BST.
    expect(first(daily, '2026-03-29T01:15:00Z')).toBe('2026-03-30T00:30:00.000Z');
    expect(first(daily, '2026-03-29T00:45:00Z')).toBe('2026-03-29T01:30:00.000Z');
  });

  it('keeps a moved tick whose moved time is a later cron time after the start', () => {
    expect(first(tt('15,45 0-3 * * *', LONDON), '2026-03-29T01:00:00Z')).toBe('2026-03-29T01:15:00.000Z');
  });

  it('compares in real time for an every-hour schedule', () => {
    expect(first(tt('30 * * * *', LONDON), '2026-10-25T00:45:00Z')).toBe('2026-10-25T01:30:00.000Z');
  });

  // Airflow's _align_to_next asks _get_prev whether the start is a tick, and _get_prev can land on
  // a gap time that _get_next never runs. A start exactly on a moved tick then skips a day, and a
  // start at a skipped gap time's moved instant becomes a tick no other run reaches. hubflow asks
  // its own ticks instead, so intervals stay contiguous.
  it('takes a start exactly on a moved tick as that tick (Airflow skips to 2026-03-30T00:00Z)', () => {
    expect(first(tt('*/15 1 * * *', LONDON), '2026-03-29T01:00:00Z')).toBe('2026-03-29T01:00:00.000Z');
  });

  it('does not run a skipped gap time for a start on its moved instant (Airflow runs 01:45Z)', () => {
    expect(first(tt('*/15 1 * * *', LONDON), '2026-03-29T01:45:00Z')).toBe('2026-03-30T00:00:00.000Z');
  });

  it('without catchup covers the whole night after the gap (Airflow _skip_to_latest: from 01:45Z)', () => {
    expect(latestInterval(tt('*/15 1 * * *', LONDON), '2026-03-30T00:10:00Z')).toEqual(['2026-03-29T01:00:00.000Z', '2026-03-30T00:00:00.000Z']);
  });
});

describe('every-hour schedules in a zone that shifts by 30 minutes (Australia/Lord_Howe)', () => {
  // Airflow moves an every-hour schedule by adding the wall-clock step to the instant, which off a
  // whole-hour shift lands on times the cron does not name. hubflow runs the cron's real slots.
  it('runs 30 * * * * at 02:30 on the spring-forward day (Airflow: 03:00 instead)', () => {
    // 2026-10-04: 02:00 (+10:30) becomes 02:30 (+11).
    expect(ticks(tt('30 * * * *', 'Australia/Lord_Howe'), '2026-10-03T14:00:00Z', '2026-10-03T17:00:00Z')).toEqual([
      '2026-10-03T14:00:00.000Z', // 00:30
      '2026-10-03T15:00:00.000Z', // 01:30
      '2026-10-03T15:30:00.000Z', // 02:30 +11
      '2026-10-03T16:30:00.000Z', // 03:30
    ]);
  });

  it('runs 0 * * * * on whole hours when the clock goes back (Airflow adds 02:00 +11, the change itself)', () => {
    // 2026-04-05: 02:00 (+11) becomes 01:30 (+10:30).
    expect(ticks(tt('0 * * * *', 'Australia/Lord_Howe'), '2026-04-04T13:00:00Z', '2026-04-04T17:00:00Z')).toEqual([
      '2026-04-04T13:00:00.000Z', // 00:00 +11
      '2026-04-04T14:00:00.000Z', // 01:00 +11
      '2026-04-04T15:30:00.000Z', // 02:00 +10:30
      '2026-04-04T16:30:00.000Z', // 03:00
    ]);
  });
});

describe('an every-hour schedule limited to some days', () => {
  it('runs on those days only across a DST change (Airflow adds Friday 23:00 GMT)', () => {
    expect(ticks(tt('0 * * * 6', LONDON), '2026-10-24T21:30:00Z', '2026-10-31T03:00:00Z')).toEqual([
      '2026-10-24T22:00:00.000Z', // Saturday 23:00 BST
      '2026-10-31T00:00:00.000Z', // Saturday 00:00 GMT
      '2026-10-31T01:00:00.000Z',
      '2026-10-31T02:00:00.000Z',
    ]);
  });
});

// Property tests against a literal port of Airflow's algorithm over many zones and cron shapes.
const MINUTE = 60_000;
const HOUR = 3_600_000;
const formats = new Map<string, Intl.DateTimeFormat>();

/** A zone's UTC offset at `t`, straight from Intl (independent of the timetable's own cache). */
function offsetAt(zone: string, t: number): number {
  let f = formats.get(zone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', {
      timeZone: zone,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
    formats.set(zone, f);
  }
  const p: Record<string, number> = {};
  for (const { type, value } of f.formatToParts(t)) p[type] = Number(value);
  return Date.UTC(p.year ?? 0, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0) - Math.floor(t / 1000) * 1000;
}

interface Shape {
  minutes: Set<number>;
  hours: Set<number>;
  everyHour: boolean;
}

function shape(cron: string): Shape {
  const { minute, hour } = CronExpressionParser.parse(cron, { tz: 'UTC' }).fields;
  return { minutes: new Set<number>(minute.values), hours: new Set<number>(hour.values), everyHour: hour.values.length === 24 };
}

/** Whether naive wall-clock time `w` (UTC ms with local fields) is a cron time; day fields are '*'. */
function matches(c: Shape, w: number): boolean {
  const d = new Date(w);
  return d.getUTCSeconds() === 0 && c.minutes.has(d.getUTCMinutes()) && c.hours.has(d.getUTCHours());
}

/**
 * Airflow's CronMixin._get_next (airflow/timetables/_cron.py), step by step: make_naive (local
 * wall-clock time, fold dropped); croniter's next match strictly after it, on naive time; then
 * make_aware with fold=1 through pendulum's Timezone.convert (a repeated time takes its second
 * pass; a time in a gap becomes `dt + (offset_after - offset_before)`), or, for an every-hour
 * cron, `current + (scheduled - naive)` in real time.
 */
function airflowNext(c: Shape, zone: string, current: number): number {
  const naive = current + offsetAt(zone, current);
  let s = Math.floor(naive / MINUTE) * MINUTE + MINUTE;
  while (!matches(c, s)) s += MINUTE;
  if (c.everyHour) return current + (s - naive);
  const before = offsetAt(zone, s - 26 * HOUR);
  const after = offsetAt(zone, s + 26 * HOUR);
  const real = [s - before, s - after].filter((t) => offsetAt(zone, t) === s - t);
  return real.length ? Math.max(...real) : s + (after - before) - after;
}

/** Instants in `year` just before an offset change, on the hour grid, with the offsets either side. */
function changes(zone: string, year: number): { at: number; before: number; after: number }[] {
  const out = [];
  for (let t = Date.UTC(year, 0, 1); t < Date.UTC(year + 1, 0, 1); t += HOUR) {
    const before = offsetAt(zone, t);
    const after = offsetAt(zone, t + HOUR);
    if (before !== after) {
      let at = t; // to the minute
      while (offsetAt(zone, at) === before) at += MINUTE;
      out.push({ at, before, after });
    }
  }
  return out;
}

// Tehran kept DST until 2022 (its changes fall at midnight); Lord Howe shifts by 30 minutes;
// Santiago's gap is 00:00-01:00; Chatham sits at +12:45/+13:45.
const ZONES: [string, number][] = [
  ['Europe/London', 2026],
  ['America/New_York', 2026],
  ['Australia/Lord_Howe', 2026],
  ['America/Santiago', 2026],
  ['Asia/Tehran', 2021],
  ['Pacific/Chatham', 2026],
  ['Europe/Zurich', 2023],
];
const DAILY = ['30 1 * * *', '0 2 * * *', '45 23 * * *', '0 0 * * *', '30 0 * * *', '0 3 * * *'];
const SHAPES = [
  ...DAILY,
  '*/15 1 * * *',
  '0,30 1 * * *',
  '0 1-3 * * *',
  '15,45 0-3 * * *',
  '15,40 2 * * *',
  '*/10 0-3 * * *',
  '0 */2 * * *',
  '0 * * * *',
  '30 * * * *',
  '*/20 * * * *',
];
const CASES = ZONES.flatMap(([zone, year]) => changes(zone, year).map((change) => ({ zone, change })));

describe('over many zones and cron shapes', () => {
  it('finds both changes of every zone', () => {
    expect(CASES).toHaveLength(ZONES.length * 2);
  });

  it.each(CASES.map((c) => [c.zone, new Date(c.change.at).toISOString(), c] as const))('%s around %s', (zone, _at, { change }) => {
    const from = change.at - 2 * 24 * HOUR;
    const to = change.at + 2 * 24 * HOUR;
    const gap = change.after - change.before; // > 0 spring forward, < 0 fall back
    for (const cron of SHAPES) {
      const c = shape(cron);
      const t = tt(cron, zone);
      const got = t.between(new Date(from), new Date(to)).map((d) => d.getTime());
      const label = `${cron} in ${zone}`;

      // Ticks strictly increase, and next/prev walk the same ones.
      expect(
        got.every((x, i) => i === 0 || x > got[i - 1]!),
        label,
      ).toBe(true);
      const forward: number[] = [];
      for (let d = t.next(new Date(from - 1)); d && d.getTime() < to; d = t.next(d)) forward.push(d.getTime());
      const backward: number[] = [];
      for (let d = t.prev(new Date(to)); d && d.getTime() >= from; d = t.prev(d)) backward.unshift(d.getTime());
      expect(forward, label).toEqual(got);
      expect(backward, label).toEqual(got);

      // The same ticks as Airflow's _get_next, run after run (Lord Howe's every-hour schedules aside, above).
      if (!(c.everyHour && Math.abs(gap) % HOUR !== 0)) {
        const airflow: number[] = [];
        for (let x = airflowNext(c, zone, from - 1); x < to; x = airflowNext(c, zone, x)) airflow.push(x);
        expect(got, label).toEqual(airflow);
      }

      // No tick in a gap: each runs at a cron time, or is the first cron time of a gap moved by the gap.
      for (const x of got) {
        const wall = x + offsetAt(zone, x);
        const moved = gap > 0 && x >= change.at && x < change.at + gap && matches(c, wall - gap);
        expect(matches(c, wall) || moved, `${label}: ${new Date(x).toISOString()}`).toBe(true);
      }

      // A daily schedule runs once every local day.
      if (DAILY.includes(cron)) {
        const days = got.map((x) => new Date(x + offsetAt(zone, x)).toISOString().slice(0, 10));
        expect(new Set(days).size, label).toBe(days.length);
        expect(days.length, label).toBeGreaterThanOrEqual(3);
      }

      // An every-hour schedule runs both passes of a repeated hour; others only the second.
      if (gap < 0) {
        for (let u = change.at + gap; u < change.at; u += MINUTE) {
          if (!matches(c, u + offsetAt(zone, u))) continue;
          expect(got.includes(u), `${label}: first pass ${new Date(u).toISOString()}`).toBe(c.everyHour);
          expect(got.includes(u - gap), `${label}: second pass ${new Date(u - gap).toISOString()}`).toBe(true);
        }
      }

      // The first tick from a start date is Airflow's _align_to_next: the start if it is a tick,
      // else _get_next from its wall-clock time (the quirk pinned above aside).
      if (!(c.everyHour && Math.abs(gap) % HOUR !== 0)) {
        for (let s = change.at - 6 * HOUR; s < change.at + 6 * HOUR; s += 15 * MINUTE) {
          const want = got.includes(s) ? s : airflowNext(c, zone, s);
          expect(t.first(new Date(s))?.getTime(), `${label} from ${new Date(s).toISOString()}`).toBe(want);
        }
      }
    }
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

  it('rejects a cron that never fires', () => {
    expect(scheduleError(() => validateSchedule({ cron: '0 0 30 2 *', timezone: LONDON })).field).toBe('cron');
  });
});
