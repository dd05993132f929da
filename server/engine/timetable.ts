import { CronExpressionParser, type CronExpression } from 'cron-parser';

export interface CronSchedule { cron: string; timezone: string }

export class ScheduleError extends Error {
  constructor(readonly field: 'cron' | 'timezone', message: string) {
    super(message);
    this.name = 'ScheduleError';
  }
}

const SECOND = 1_000;
const DAY = 86_400_000;
const HORIZON = 3_653 * DAY; // 10 years, leap days included
// Real offsets lie within [-12h, +14h], so the instants W±14h bracket every reading of wall time W.
const REACH = 14 * 3_600_000;

/** UTC offsets of one zone. Intl is slow, so each UTC day is read once and its (single) change located. */
class Zone {
  private static readonly all = new Map<string, Zone>();
  private readonly days = new Map<number, { at: number; before: number; after: number }>();
  private readonly fmt: Intl.DateTimeFormat;

  static of(name: string): Zone {
    let zone = Zone.all.get(name);
    if (!zone) Zone.all.set(name, (zone = new Zone(name)));
    return zone;
  }

  private constructor(name: string) {
    this.fmt = new Intl.DateTimeFormat('en-US', {
      timeZone: name, hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric',
      hour: 'numeric', minute: 'numeric', second: 'numeric',
    });
  }

  offset(t: number): number {
    const day = Math.floor(t / DAY);
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
    return t < span.at ? span.before : span.after;
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
  for (let hi = a.length; lo < hi;) {
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
    this.times = hour.values.flatMap((h) => minute.values.flatMap((m) => second.values.map((s) =>
      ((h * 60 + m) * 60 + s) * SECOND))).sort((a, b) => a - b);
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

export class CronTimetable {
  private readonly zone: Zone;
  private readonly floating: Floating;
  /** Airflow: a schedule with a wildcard hour runs every real slot instead of shifting or deduplicating. */
  private readonly everyHour: boolean;

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
    this.everyHour = cron.fields.hour.isWildcard || (!preset && /^(\*|0-23)(\/\d+)?$/.test(atoms.at(-4) ?? ''));
    this.zone = Zone.of(s.timezone);
    this.floating = new Floating(cron);
    if (this.floating.forward(Date.now()).next().done) throw new ScheduleError('cron', `'${s.cron}' never fires`);
  }

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

  between(from: Date, to: Date): Date[] {
    const f = from.getTime();
    const end = to.getTime();
    if (!(f < end)) return [];
    const stop = end + this.offsets(end)[1];
    const out: number[] = [];
    for (const w of this.floating.forward(f + this.offsets(f)[0] - 1)) {
      if (w >= stop) break;
      for (const t of this.resolve(w)) if (t >= f && t < end) out.push(t);
    }
    // A tick shifted out of a gap can land on or after a later real tick, so re-sort and dedupe.
    out.sort((x, y) => x - y);
    return out.filter((t, i) => t !== out[i - 1]).map((t) => new Date(t));
  }

  /** Real instants for floating wall time `w`, ascending, per Airflow's DST rules. */
  private resolve(w: number): number[] {
    const before = this.zone.offset(w - REACH);
    const after = this.zone.offset(w + REACH);
    if (before === after) return [w - before];
    const real = [w - before, w - after].filter((t) => this.zone.offset(t) === w - t).sort((x, y) => x - y);
    if (real.length === 0) return this.everyHour ? [] : [w - before]; // gap: later by the gap's length
    return this.everyHour ? real : real.slice(-1); // fold: the second pass only
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
