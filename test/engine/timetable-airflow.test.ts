import { describe, it, expect } from 'vitest';
import type { CronTimetable } from '../../server/engine/timetable.ts';
import { LONDON, NEW_YORK, ticks, tt } from './timetable-support.ts';

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
