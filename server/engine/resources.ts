import { z } from 'zod';
import type { Config } from '../../core/config.ts';
import { SpecError } from '../../core/errors.ts';
import { type Duration, durationMs, formatDuration, unknownOption } from './duration.ts';
import { CronTimetable, ScheduleError, toLocal, type LocalTime } from './timetable.ts';

/**
 * A shared system tasks touch (`hub-db`, `payroll-db`, `warehouse`, a filing gateway), with the
 * windows in which other batches hold it (blackouts) and how many hubflow tasks may use it at
 * once (slots). Declared in code beside the DAGs with `defineResource`.
 */
/**
 * What a resource's `open` may ask for: the environment's settings, with the metadata database's
 * URL resolved (embedded or given). Each resource names the few it needs and gets only those,
 * so a secret (SNOWFLAKE_PASSWORD) reaches the one resource that connects with it.
 */
export type ResourceSettings = Omit<Config, 'HUBFLOW_DATABASE_URL'> & { readonly HUBFLOW_DATABASE_URL: string };

export interface ResourceOptions<Handle = undefined, K extends keyof ResourceSettings = never> {
  id: string;
  description?: string;
  blackouts?: BlackoutOptions[];
  /** A pool: at most this many slots in use at once, across every worker. Unlimited without. */
  slots?: number;
  /**
   * A task already running when a blackout begins: 'finish' (default) lets it run to its end,
   * since aborting a half-done load usually costs the other batch more than it saves;
   * 'cancel' aborts it, and its retry waits for the window's end.
   */
  onBlackout?: 'finish' | 'cancel';
  /** Deferred tasks start within this long after a window ends, spread so they do not stampede. Default '1m'. */
  deferJitter?: Duration;
  /** The settings `open` receives, and the only ones. */
  settings?: readonly K[];
  /** Opens the handle a task naming this resource in `uses` gets; once per process, on first use. */
  open?: (settings: Pick<ResourceSettings, K>) => Handle | Promise<Handle>;
  /** Closes the handle at shutdown. */
  close?: (handle: Handle) => unknown;
}

/** A recurring window (`cron` or `lastBusinessDay`, with `timezone` and `duration`), or a one-off (`from`, `to`). */
export interface BlackoutOptions {
  /** Who holds the resource and why: shown with every deferral and collision. */
  reason: string;
  /** Local start time of each window, e.g. '30 1 * * *' (01:30 daily). */
  cron?: string;
  /** 'HH:MM' on the last Monday-to-Friday of each month (month-end close). */
  lastBusinessDay?: string;
  timezone?: string;
  /** How long each window lasts: '2h', '90m', '1h30m'. */
  duration?: Duration;
  /** One-off window: ISO 8601 instants with an offset. */
  from?: string;
  to?: string;
}

export interface Window {
  start: Date;
  end: Date;
  reason: string;
}

export interface Blackout {
  readonly reason: string;
  /** The zone its times are written in (UTC for a one-off). */
  readonly timezone: string;
  /** Human form for listings: 'daily 01:30 for 2h (Europe/London)'. */
  readonly describe: string;
  /** The window containing `at`, if any. */
  containing(at: Date): Window | null;
  /** Windows that overlap [from, to), in order. */
  overlapping(from: Date, to: Date): Window[];
}

declare const HANDLE: unique symbol;

export interface Resource<Handle = unknown> {
  readonly id: string;
  readonly description: string;
  readonly slots: number | undefined;
  readonly onBlackout: 'finish' | 'cancel';
  readonly deferJitterMs: number;
  readonly blackouts: readonly Blackout[];
  readonly settings: readonly (keyof ResourceSettings)[];
  readonly open: ((settings: Partial<ResourceSettings>) => unknown) | undefined;
  readonly close: ((handle: unknown) => unknown) | undefined;
  /** Type only: never set. */
  readonly [HANDLE]?: Handle;
  file?: string;
}

/** What a task gets for a resource it names in `uses`. */
export type HandleOf<R> = R extends Resource<infer H> ? H : never;

const RESOURCE_BRAND = Symbol.for('hubflow.resource');

export function isResource(value: unknown): value is Resource {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[RESOURCE_BRAND] === true;
}

const schema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'use letters, digits, _ . - (at most 128)'),
    description: z.string().optional(),
    blackouts: z
      .array(
        z
          .object({
            reason: z.string().min(1),
            cron: z.string().optional(),
            lastBusinessDay: z
              .string()
              .regex(/^([01]\d|2[0-3]):[0-5]\d$/, "use 'HH:MM'")
              .optional(),
            timezone: z.string().optional(),
            duration: z.unknown().optional(),
            from: z.string().optional(),
            to: z.string().optional(),
          })
          .strict(),
      )
      .optional(),
    slots: z.number().int().min(1, 'a pool needs at least 1 slot').max(10_000).optional(),
    onBlackout: z.enum(['finish', 'cancel']).optional(),
    deferJitter: z.unknown().optional(),
    settings: z.array(z.string()).optional(),
    open: z.custom<(s: unknown) => unknown>((v) => typeof v === 'function', 'must be a function').optional(),
    close: z.custom<(h: unknown) => unknown>((v) => typeof v === 'function', 'must be a function').optional(),
  })
  .strict();

/** Validates a resource and returns it compiled and frozen; throws SpecError naming the field. */
export function defineResource<Handle = undefined, K extends keyof ResourceSettings = never>(options: ResourceOptions<Handle, K>): Resource<Handle> {
  const guessId = typeof (options as { id?: unknown } | undefined)?.id === 'string' ? options.id : undefined;
  const parsed = schema.safeParse(options);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
    const field = [...issue.path, ...keys]
      .map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`))
      .join('')
      .replace(/^\./, '');
    throw new SpecError('resource', guessId, field || '(root)', keys.length ? unknownOption(keys[0]) : issue.message);
  }
  const spec = parsed.data;
  let deferJitterMs = 60_000;
  if (spec.deferJitter !== undefined) {
    const ms = durationMs(spec.deferJitter);
    if (typeof ms === 'string' || ms > 3_600_000) throw new SpecError('resource', spec.id, 'deferJitter', typeof ms === 'string' ? ms : 'at most 1h');
    deferJitterMs = ms;
  }
  const blackouts = (spec.blackouts ?? []).map((b, i) => compileBlackout(spec.id, `blackouts[${i}]`, b));
  return Object.freeze({
    [RESOURCE_BRAND]: true as const,
    id: spec.id,
    description: spec.description ?? '',
    slots: spec.slots,
    onBlackout: spec.onBlackout ?? 'finish',
    deferJitterMs,
    blackouts: Object.freeze(blackouts),
    settings: Object.freeze([...(spec.settings ?? [])]) as readonly (keyof ResourceSettings)[],
    open: spec.open,
    close: spec.close,
    file: undefined,
  }) as Resource<Handle>;
}

type BlackoutSpec = NonNullable<z.infer<typeof schema>['blackouts']>[number];

function compileBlackout(resourceId: string, field: string, b: BlackoutSpec): Blackout {
  const fail = (sub: string, problem: string): never => {
    throw new SpecError('resource', resourceId, `${field}.${sub}`, problem);
  };
  const recurring = b.cron !== undefined || b.lastBusinessDay !== undefined;
  const oneOff = b.from !== undefined || b.to !== undefined;
  if (recurring === oneOff) fail('cron', 'give either cron (or lastBusinessDay) with timezone and duration, or from and to');
  if (oneOff) {
    const start = instant(b.from, () => fail('from', 'an ISO 8601 instant with an offset is required, e.g. 2026-12-24T18:00:00Z'));
    const end = instant(b.to, () => fail('to', 'an ISO 8601 instant with an offset is required, e.g. 2026-12-27T06:00:00Z'));
    if (end <= start) fail('to', 'must be after from');
    const window: Window = { start, end, reason: b.reason };
    return {
      reason: b.reason,
      timezone: 'UTC',
      describe: `${start.toISOString()} to ${end.toISOString()}`,
      containing: (at) => (at >= start && at < end ? window : null),
      overlapping: (from, to) => (start < to && end > from ? [window] : []),
    };
  }
  if (b.cron !== undefined && b.lastBusinessDay !== undefined) fail('lastBusinessDay', 'give cron or lastBusinessDay, not both');
  if (!b.timezone) fail('timezone', 'required with a recurring blackout (an IANA zone such as Europe/London)');
  if (b.duration === undefined) fail('duration', "required: '2h', '90m', '1h30m'");
  const length = durationMs(b.duration);
  if (typeof length === 'string' || length <= 0) fail('duration', typeof length === 'string' ? length : 'must be longer than 0s');
  const windowMs = length as number;
  let starts: Starts;
  try {
    starts = b.cron !== undefined ? new CronTimetable({ cron: b.cron, timezone: b.timezone! }) : lastBusinessDay(b.lastBusinessDay!, b.timezone!);
  } catch (err) {
    if (err instanceof ScheduleError) fail(err.field === 'cron' && b.cron === undefined ? 'lastBusinessDay' : err.field, err.message);
    throw err;
  }
  return recurringBlackout(
    b.reason,
    b.timezone!,
    starts,
    windowMs,
    `${b.cron !== undefined ? `cron '${b.cron}'` : `last business day ${b.lastBusinessDay}`} for ${formatDuration(windowMs)} (${b.timezone})`,
  );
}

function instant(value: string | undefined, onBad: () => never): Date {
  if (!value || !/([zZ]|[+-]\d\d:?\d\d)$/.test(value)) return onBad();
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? onBad() : date;
}

/** Start instants of a recurring window. */
interface Starts {
  next(after: Date): Date | null;
  prev(before: Date): Date | null;
}

function recurringBlackout(reason: string, timezone: string, starts: Starts, durationMs: number, describe: string): Blackout {
  // Every dispatch and start asks about "now", which moves slowly relative to these windows:
  // the last answer stays true until the next window start (or the current window's end).
  let cached: { from: number; until: number; window: Window | null } | undefined;
  const containing = (at: Date): Window | null => {
    const t = at.getTime();
    if (cached && t >= cached.from && t < cached.until) return cached.window;
    // The latest start at or before `at` is enough: if an earlier window covers `at`, that one does too.
    const start = starts.prev(new Date(t + 1));
    const next = starts.next(at)?.getTime() ?? Infinity;
    const window = start && t < start.getTime() + durationMs ? { start, end: new Date(start.getTime() + durationMs), reason } : null;
    cached = { from: t, until: window ? Math.min(window.end.getTime(), next) : next, window };
    return window;
  };
  return {
    reason,
    timezone,
    describe,
    containing,
    overlapping(from, to) {
      const out: Window[] = [];
      const first = containing(from);
      if (first) out.push(first);
      for (let s = starts.next(first ? first.start : from); s && s < to; s = starts.next(s)) {
        if (!first || s > first.start) out.push({ start: s, end: new Date(s.getTime() + durationMs), reason });
      }
      return out;
    },
  };
}

/** 'HH:MM' on the last Monday-to-Friday of every month, in a zone (DST rules as for cron ticks). */
function lastBusinessDay(at: string, timezone: string): Starts {
  const [hour, minute] = at.split(':').map(Number) as [number, number];
  // Candidates: that time on each of the last days of the month; keep the last weekday's.
  const candidates = new CronTimetable({ cron: `${minute} ${hour} 24-31 * *`, timezone });
  const isLastWeekday = (t: Date): boolean => {
    const local: LocalTime = toLocal(t, timezone);
    if (local.weekday === 0 || local.weekday === 6) return false;
    const daysInMonth = new Date(Date.UTC(local.year, local.month, 0)).getUTCDate();
    // No weekday after it this month: the remaining days are all Saturday/Sunday.
    for (let d = local.day + 1, wd = (local.weekday + 1) % 7; d <= daysInMonth; d++, wd = (wd + 1) % 7) {
      if (wd !== 0 && wd !== 6) return false;
    }
    return true;
  };
  const walk = (from: Date | null, step: (t: Date) => Date | null): Date | null => {
    for (let t = from, i = 0; t && i < 100; t = step(t), i++) if (isLastWeekday(t)) return t;
    return null;
  };
  return {
    next: (after) => walk(candidates.next(after), (t) => candidates.next(t)),
    prev: (before) => walk(candidates.prev(before), (t) => candidates.prev(t)),
  };
}

/** The blackout window of any of `resources` that contains `at`, the one ending last if several do. */
export function blackoutAt(resources: readonly Resource[], at: Date): (Window & { resource: string }) | null {
  let found: (Window & { resource: string }) | null = null;
  for (const r of resources) {
    for (const b of r.blackouts) {
      const w = b.containing(at);
      if (w && (!found || w.end > found.end)) found = { ...w, resource: r.id };
    }
  }
  return found;
}

/**
 * The first instant at or after `at` when none of `resources` is in blackout, with the window
 * that held it last (null when it is free at `at`). Back-to-back windows chain.
 */
export function freeFrom(resources: readonly Resource[], at: Date): { at: Date; held: (Window & { resource: string }) | null } {
  let t = at;
  let held: (Window & { resource: string }) | null = null;
  for (let i = 0; i < 1_000; i++) {
    const w = blackoutAt(resources, t);
    if (!w) return { at: t, held };
    held = w;
    t = w.end;
  }
  return { at: t, held };
}

/** The next instant after `at` when a blackout of any of `resources` begins (for onBlackout 'cancel'). */
export function nextBlackoutStart(resources: readonly Resource[], at: Date, horizonMs = 7 * 86_400_000): (Window & { resource: string }) | null {
  let best: (Window & { resource: string }) | null = null;
  const to = new Date(at.getTime() + horizonMs);
  for (const r of resources) {
    for (const b of r.blackouts) {
      const w = b.overlapping(at, to).find((x) => x.start > at);
      if (w && (!best || w.start < best.start)) best = { ...w, resource: r.id };
    }
  }
  return best;
}
