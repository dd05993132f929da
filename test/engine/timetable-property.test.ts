import { describe, it, expect } from 'vitest';
import { CronExpressionParser } from 'cron-parser';
import { tt } from './timetable-support.ts';

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
