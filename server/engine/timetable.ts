import { CronExpressionParser, type CronExpression } from 'cron-parser';

export interface CronSchedule {
  cron: string;
  timezone: string;
  /** A six-field cron's first field is seconds; it is refused unless the schedule says it means it. */
  seconds?: boolean;
}

export class ScheduleError extends Error {
  constructor(
    readonly field: 'cron' | 'timezone',
    message: string,
  ) {
    super(message);
    this.name = 'ScheduleError';
  }
}

const SECOND = 1_000;
const DAY = 86_400_000;
const HORIZON = 3_653 * DAY; // 10 years, leap days included
// Real offsets lie within [-12h, +14h], so the instants W±14h bracket every reading of wall time W.
const REACH = 14 * 3_600_000;

/** A change of UTC offset at instant `at` (Infinity: none that day). */
interface Change {
  at: number;
  before: number;
  after: number;
}

/** UTC offsets of one zone. Intl is slow, so each UTC day is read once and its (single) change located. */
class Zone {
  private static readonly all = new Map<string, Zone>();
  private readonly days = new Map<number, Change>();
  private readonly fmt: Intl.DateTimeFormat;

  static of(name: string): Zone {
    let zone = Zone.all.get(name);
    if (!zone) Zone.all.set(name, (zone = new Zone(name)));
    return zone;
  }

  private constructor(name: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: name,
      hourCycle: 'h23',
      year: 'numeric',
      month: 'numeric',
      day: 'numeric',
      hour: 'numeric',
      minute: 'numeric',
      second: 'numeric',
    });
  }

  offset(t: number): number {
    const span = this.span(Math.floor(t / DAY));
    return t < span.at ? span.before : span.after;
  }

  /** Offset changes at instants in (a, b], oldest first. */
  changes(a: number, b: number): Change[] {
    const out: Change[] = [];
    for (let day = Math.floor(a / DAY); day <= Math.floor(b / DAY); day++) {
      const span = this.span(day);
      if (span.at > a && span.at <= b) out.push(span);
    }
    return out;
  }

  private span(day: number): Change {
    let span = this.days.get(day);
    if (!span) {
      if (this.days.size > 20_000) this.days.clear();
      const start = day * DAY;
      let lo = start;
      let hi = start + DAY - SECOND;
      const before = this.exact(lo);
      const after = this.exact(hi);
      // Zones change offset at most once a day, so bisecting to the second finds the change exactly.
      while (before !== after && hi - lo > SECOND) {
        const mid = lo + Math.floor((hi - lo) / 2 / SECOND) * SECOND;
        if (this.exact(mid) === before) lo = mid;
        else hi = mid;
      }
      span = { at: before === after ? Infinity : hi, before, after };
      this.days.set(day, span);
    }
    return span;
  }

  private exact(t: number): number {
    const p: Record<string, number> = {};
    for (const { type, value } of this.fmt.formatToParts(t)) p[type] = Number(value);
    const wall = Date.UTC(p.year ?? 0, (p.month ?? 1) - 1, p.day ?? 1, p.hour ?? 0, p.minute ?? 0, p.second ?? 0);
    return wall - Math.floor(t / SECOND) * SECOND;
  }
}

/** How many entries of ascending `a` are below `x` (or equal to it, with `orEqual`). */
function rank(a: number[], x: number, orEqual: boolean): number {
  let lo = 0;
  for (let hi = a.length; lo < hi; ) {
    const mid = (lo + hi) >> 1;
    const v = a[mid] ?? 0;
    if (v < x || (orEqual && v === x)) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/**
 * "Floating" wall-clock ticks: UTC ms whose fields are the local wall-clock fields. cron-parser
 * is slow (~20µs a call), so it only picks the matching days; times within a day come from a table.
 */
class Floating {
  private readonly times: number[];
  private readonly matching = new Map<number, boolean>();

  constructor(private readonly cron: CronExpression) {
    const { hour, minute, second } = cron.fields;
    this.times = hour.values.flatMap((h) => minute.values.flatMap((m) => second.values.map((s) => ((h * 60 + m) * 60 + s) * SECOND))).sort((a, b) => a - b);
  }

  /** Floating ticks strictly after `after`, ascending. */
  *forward(after: number): Generator<number> {
    let day: number | null = Math.floor(after / DAY) * DAY;
    let i = this.matches(day) ? rank(this.times, after - day, true) : this.times.length;
    for (; day !== null; day = this.step(day + DAY - 1, true), i = 0) {
      for (; i < this.times.length; i++) yield day + (this.times[i] ?? 0);
    }
  }

  /** Floating ticks strictly before `before`, descending. */
  *backward(before: number): Generator<number> {
    let day: number | null = Math.floor(before / DAY) * DAY;
    let i = this.matches(day) ? rank(this.times, before - day, false) - 1 : -1;
    for (; day !== null; day = this.step(day, false), i = this.times.length - 1) {
      for (; i >= 0; i--) yield day + (this.times[i] ?? 0);
    }
  }

  private matches(day: number): boolean {
    let m = this.matching.get(day);
    if (m === undefined) {
      if (this.matching.size > 10_000) this.matching.clear();
      this.matching.set(day, (m = this.step(day - 1, true) === day));
    }
    return m;
  }

  /** Start of the nearest matching day strictly after / before instant `from`; null once cron-parser gives up. */
  private step(from: number, forward: boolean): number | null {
    try {
      this.cron.reset(new Date(from));
      return Math.floor((forward ? this.cron.next() : this.cron.prev()).getTime() / DAY) * DAY;
    } catch {
      return null;
    }
  }
}

export function validateSchedule(s: CronSchedule): void {
  new CronTimetable(s);
}

/** The wall-clock times [start, end) a spring-forward change skips, with the offsets either side. */
interface Gap {
  start: number;
  end: number;
  before: number;
  after: number;
}

/**
 * A cron schedule in an IANA zone, with Airflow's DST rules. Airflow (timetables/_cron.py) runs
 * croniter on naive local wall-clock time and re-attaches the zone with fold=1, so:
 * - the first cron time in a spring-forward gap runs once, moved later by the gap's length, and
 *   the next match is searched from that moved wall time (later cron times in the gap never run);
 * - a cron time in a fall-back repeated hour runs once, at its second pass, unless the hour
 *   field covers all 24 hours: then every real slot runs, both passes included;
 * - a start date is compared in wall-clock time (see `first`).
 * Ticks are instants: next, prev and between walk them in real time.
 */
export class CronTimetable {
  private readonly zone: Zone;
  private readonly floating: Floating;
  /** Airflow's _covers_every_hour: croniter expands an hour field naming all 24 hours to '*'. */
  private readonly everyHour: boolean;
  private readonly gapFirst = new Map<number, number | null>();

  constructor(s: CronSchedule) {
    try {
      // Offset strings ('+05:00') pass Intl on newer Node but are not IANA zones.
      if (!s.timezone || /^[+-]/.test(s.timezone)) throw new RangeError(s.timezone);
      new Intl.DateTimeFormat('en-US', { timeZone: s.timezone });
    } catch {
      throw new ScheduleError('timezone', `unknown time zone '${s.timezone}'`);
    }
    const atoms = s.cron.trim().split(/\s+/);
    const preset = atoms[0]?.startsWith('@') ?? false; // '@hourly' etc: cron-parser expands them
    if (!preset && atoms.length !== 5 && atoms.length !== 6) {
      throw new ScheduleError('cron', `expected 5 or 6 fields, got ${atoms.length}: '${s.cron}'`);
    }
    let cron: CronExpression;
    try {
      cron = CronExpressionParser.parse(s.cron.trim(), { tz: 'UTC' });
    } catch (err) {
      throw new ScheduleError('cron', err instanceof Error ? err.message : String(err));
    }
    // A stray sixth field turns a daily cron into one that fires every second of a minute: a
    // catch-up or a backfill over it is millions of runs. Only a schedule that says so gets one.
    const secondly = atoms.length === 6 || cron.fields.second.values.some((v) => v !== 0);
    if (secondly && !s.seconds) {
      throw new ScheduleError('cron', `'${s.cron}' has a seconds field (6 fields, the first is seconds): use 5 fields, or set seconds: true if it is meant`);
    }
    this.everyHour = cron.fields.hour.values.length === 24;
    this.zone = Zone.of(s.timezone);
    this.floating = new Floating(cron);
    if (this.floating.forward(Date.now()).next().done) throw new ScheduleError('cron', `'${s.cron}' never fires`);
  }

  /** The first tick strictly after `after`. */
  next(after: Date): Date | null {
    const a = after.getTime();
    let best = Infinity;
    let bound = Infinity; // no floating tick at or past this can beat `best`
    for (const w of this.floating.forward(a + this.offsets(a)[0])) {
      if (w >= bound || w - a > HORIZON + DAY) break;
      for (const t of this.resolve(w)) {
        if (t > a && t < best) bound = (best = t) + this.offsets(t)[1];
      }
    }
    return best <= a + HORIZON ? new Date(best) : null;
  }

  /** The last tick strictly before `before`. */
  prev(before: Date): Date | null {
    const b = before.getTime();
    let best = -Infinity;
    let bound = -Infinity;
    for (const w of this.floating.backward(b + this.offsets(b)[1])) {
      if (w <= bound || b - w > HORIZON + DAY) break;
      for (const t of this.resolve(w)) {
        if (t < b && t > best) bound = (best = t) + this.offsets(t)[0];
      }
    }
    return best >= b - HORIZON ? new Date(best) : null;
  }

  /**
   * The ticks in [from, to), ascending; when there are more than `max`, only the first max + 1
   * are listed, so a caller can refuse a period too long for its schedule without first holding
   * every tick of it (a year of a seconds schedule is 31 million).
   */
  between(from: Date, to: Date, max = Number.POSITIVE_INFINITY): Date[] {
    const f = from.getTime();
    const end = to.getTime();
    if (!(f < end)) return [];
    const stop = end + this.offsets(end)[1];
    const out: number[] = [];
    for (const w of this.floating.forward(f + this.offsets(f)[0] - 1)) {
      if (w >= stop || out.length > max) break;
      for (const t of this.resolve(w)) if (t >= f && t < end) out.push(t);
    }
    // Both passes of a repeated hour interleave in wall-clock order.
    return out.sort((x, y) => x - y).map((t) => new Date(t));
  }

  /**
   * The first tick of a DAG that starts at `start`, compared in wall-clock time as Airflow's
   * _align_to_next does: `start` itself if it is a tick, else the next cron time after `start`'s
   * local wall-clock time, placed by the rules above. So a start inside the first pass of a
   * repeated hour skips that hour's second pass too, and a start after a gap tick's moved time,
   * though before the tick, skips it. An every-hour schedule compares in real time, as Airflow
   * adds the wall-clock step to the instant.
   */
  first(start: Date): Date | null {
    const s = start.getTime();
    const atOrAfter = this.next(new Date(s - 1));
    if (this.everyHour || atOrAfter?.getTime() === s) return atOrAfter;
    const cronTime = this.floating.forward(s + this.zone.offset(s)).next();
    return cronTime.done ? null : new Date(this.place(cronTime.value));
  }

  /** The ticks at floating wall time `w`, ascending (several only in a repeated hour). */
  private resolve(w: number): number[] {
    const [before, after] = this.around(w);
    if (before === after) return [w - before];
    const gap = this.gapNear(w);
    const w0 = gap ? this.firstInGap(gap) : null;
    if (gap && w0 !== null) {
      if (w === w0) return [w0 - gap.before]; // the wall time w0 + gap, after the change
      if (w > w0 && w <= w0 + gap.after - gap.before) return [];
    }
    const real = this.real(w);
    return this.everyHour ? real : real.slice(-1);
  }

  /** Where Airflow's make_aware (fold=1) puts wall time `w`: its second pass, or later by the gap. */
  private place(w: number): number {
    const real = this.real(w);
    return real.at(-1) ?? w - this.around(w)[0];
  }

  /** The instants whose local wall-clock time is `w`, ascending: none in a gap, two in a repeated hour. */
  private real(w: number): number[] {
    const [before, after] = this.around(w);
    if (before === after) return [w - before];
    return [...new Set([w - before, w - after])].filter((t) => this.zone.offset(t) === w - t).sort((x, y) => x - y);
  }

  /** UTC offsets well before and after wall time `w` (a day either side covers any real gap). */
  private around(w: number): [number, number] {
    return [this.zone.offset(w - REACH - DAY), this.zone.offset(w + REACH)];
  }

  /** The spring-forward gap `w` lies in, or within one gap length after. */
  private gapNear(w: number): Gap | null {
    for (const c of this.zone.changes(w - REACH - DAY, w + REACH)) {
      const gap = { start: c.at + c.before, end: c.at + c.after, before: c.before, after: c.after };
      if (c.after > c.before && w >= gap.start && w < gap.end + (c.after - c.before)) return gap;
    }
    return null;
  }

  /** The first cron wall time inside `gap`, null if none. */
  private firstInGap(gap: Gap): number | null {
    let w0 = this.gapFirst.get(gap.start);
    if (w0 === undefined) {
      const first = this.floating.forward(gap.start - 1).next();
      w0 = !first.done && first.value < gap.end ? first.value : null;
      if (this.gapFirst.size > 1_000) this.gapFirst.clear();
      this.gapFirst.set(gap.start, w0);
    }
    return w0;
  }

  /** [min, max] UTC offset within a day of `t`: how far the wall times of ticks near `t` can sit from it. */
  private offsets(t: number): [number, number] {
    const o = [this.zone.offset(t - DAY), this.zone.offset(t), this.zone.offset(t + DAY)];
    return [Math.min(...o), Math.max(...o)];
  }
}

/** Wall-clock fields of an instant in a zone. */
export interface LocalTime {
  year: number;
  month: number; // 1-12
  day: number;
  hour: number;
  minute: number;
  /** 0 = Sunday. */
  weekday: number;
}

export function toLocal(at: Date, timezone: string): LocalTime {
  const wall = new Date(at.getTime() + Zone.of(timezone).offset(at.getTime()));
  return {
    year: wall.getUTCFullYear(),
    month: wall.getUTCMonth() + 1,
    day: wall.getUTCDate(),
    hour: wall.getUTCHours(),
    minute: wall.getUTCMinutes(),
    weekday: wall.getUTCDay(),
  };
}

/**
 * The instant a wall-clock time names in a zone, by the rules ticks follow: a time in a
 * spring-forward gap moves later by the gap; a time that happens twice is its second pass.
 * Fields overflow as Date.UTC's do (day 32 is the 1st of the next month).
 */
export function fromLocal(t: Omit<LocalTime, 'weekday'>, timezone: string): Date {
  const zone = Zone.of(timezone);
  const w = Date.UTC(t.year, t.month - 1, t.day, t.hour, t.minute);
  const before = zone.offset(w - REACH);
  const after = zone.offset(w + REACH);
  const real = [w - before, w - after].filter((x) => zone.offset(x) === w - x).sort((x, y) => x - y);
  return new Date(real.length ? real[real.length - 1]! : w - before);
}
