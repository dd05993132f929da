import { z } from 'zod';
import { SpecError } from '../../core/errors.ts';
import type { Connections } from '../connections/task-connections.ts';
import type { Logger } from '../../core/log.ts';
import { CronTimetable, ScheduleError, type CronSchedule } from './timetable.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
import { parseDuration } from './resources.ts';

export const TRIGGER_RULES = ['all_success', 'all_done', 'one_failed', 'one_success', 'none_failed'] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

/** What a task function receives. Everything a task needs to know about where it runs. */
export interface TaskContext<Item = unknown> {
  readonly dagId: string;
  readonly runId: number;
  readonly taskId: string;
  /** Position in a mapped task's list; -1 for a task that is not mapped. */
  readonly mapIndex: number;
  /** 1 for the first attempt. */
  readonly tryNumber: number;
  readonly maxTries: number;
  /** Start of the data interval this run covers (Airflow's logical date). */
  readonly logicalDate: Date;
  readonly dataInterval: { readonly start: Date; readonly end: Date };
  /** The run's conf (given with a manual trigger), frozen. */
  readonly conf: Readonly<Record<string, unknown>>;
  /** For a mapped task: its element of the upstream's list. */
  readonly item: Item;
  /** The JSON result of an upstream task; for a mapped upstream, the list of its instances' results. */
  upstream<T = unknown>(taskId: string): Promise<T>;
  readonly log: Logger;
  /** Aborted when the task passes its `timeoutMs` or the worker shuts down. */
  readonly signal: AbortSignal;
  /** The hub, the warehouse, the metadata store, staging and outbox folders; opened on first use. */
  readonly connections: Connections;
  /**
   * Escalates without failing the task (a log line and HUBFLOW_ALERT_WEBHOOK), for what an
   * operator must see though the run goes on: a critical reconciliation mismatch, say.
   */
  alert(message: string, details?: Record<string, unknown>): Promise<void>;
}

export type TaskFn<Item = unknown> = (ctx: TaskContext<Item>) => unknown;

export interface TaskOptions<Item = unknown> {
  /** Upstream task ids; this task runs when they satisfy `trigger`. */
  after?: readonly string[];
  /** Fan out: one instance per element of the list this upstream task returned. */
  map?: string;
  trigger?: TriggerRule;
  retry?: Partial<RetryPolicy>;
  timeoutMs?: number;
  /** Resources (declared with defineResource) this task touches: it never starts inside their blackouts. */
  uses?: readonly string[];
  /** Slots this task takes in each pooled resource it uses (default 1). */
  slots?: number;
  run: TaskFn<Item>;
}

const TASK_BRAND = Symbol.for('hubflow.task');
const DAG_BRAND = Symbol.for('hubflow.dag');

export interface TaskDeclaration {
  readonly [TASK_BRAND]: true;
  readonly options: TaskOptions<never>;
}

/** Declares a task. Validation happens in `defineDag`, where the task's place in the graph is known. */
export function task<Item = unknown>(options: TaskOptions<Item>): TaskDeclaration {
  return Object.freeze({ [TASK_BRAND]: true as const, options: options as TaskOptions<never> });
}

export interface ScheduleOptions extends CronSchedule {
  /** Spread the start of each run over [0, jitter] after it is due ('90s', '5m' or ms), so many DAGs due at 02:00 do not start together. */
  jitter?: string | number;
}

export interface DagOptions {
  id: string;
  description?: string;
  /** Who answers for this DAG when it fails. */
  owner?: string;
  schedule?: ScheduleOptions;
  /**
   * Local times (the schedule's zone) a run must start between, e.g. { start: '00:30', end: '06:00' }.
   * A run still queued when the window closes raises an SLA alert; `hubflow windows check` fails
   * when a blackout would push a task's start past the end.
   */
  window?: { start: string; end: string };
  /**
   * When a run must be finished, as an ISO 8601 duration from its logical date in the schedule's
   * zone: 'PT6H' (six hours after), 'P1M18DT17H' (a monthly filing due on the 19th of the next
   * month at 17:00). A run that finishes late, or is projected to, raises an SLA alert.
   */
  deadline?: string;
  /** First logical date the scheduler considers. Without it, scheduling starts at the latest complete interval. */
  startDate?: string | Date;
  /** Run every missed interval, oldest first (default false: only the latest). */
  catchup?: boolean;
  maxActiveRuns?: number;
  /** Default retry policy of every task; a task's own `retry` overrides fields of it. */
  retry?: Partial<RetryPolicy>;
  tags?: readonly string[];
  tasks: Record<string, TaskDeclaration>;
}

export interface TaskDef {
  readonly id: string;
  readonly uses: readonly string[];
  readonly slots: number;
  readonly upstream: readonly string[];
  readonly downstream: readonly string[];
  readonly map: string | undefined;
  readonly trigger: TriggerRule;
  readonly retry: RetryPolicy;
  readonly timeoutMs: number | undefined;
  readonly run: TaskFn<never>;
}

export interface Dag {
  readonly [DAG_BRAND]: true;
  readonly id: string;
  readonly description: string;
  readonly owner: string | undefined;
  readonly schedule: CronSchedule | undefined;
  readonly timetable: CronTimetable | undefined;
  /** Start jitter of scheduled runs, ms. */
  readonly jitterMs: number;
  readonly window: { start: LocalClock; end: LocalClock } | undefined;
  readonly deadline: IsoDuration | undefined;
  readonly startDate: Date | undefined;
  readonly catchup: boolean;
  readonly maxActiveRuns: number;
  readonly tags: readonly string[];
  /** Tasks in a topological order (upstreams first). */
  readonly tasks: ReadonlyMap<string, TaskDef>;
  /** Set by the loader. */
  file?: string;
}

export function isDag(value: unknown): value is Dag {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[DAG_BRAND] === true;
}

// Ids become parts of BullMQ job ids and URLs: BullMQ refuses ':' in ids.
const ID = z.string().regex(/^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$/, 'use letters, digits, _ . - (at most 128)');

const CLOCK = z.string().regex(/^([01]\d|2[0-3]):[0-5]\d$/, "use 'HH:MM'");

/** 'HH:MM' as minutes after midnight. */
export type LocalClock = number;
/** An ISO 8601 duration's calendar parts. */
export interface IsoDuration {
  readonly text: string;
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
}

const ISO_DURATION = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+)S)?)?$/;

export function parseIsoDuration(text: string): IsoDuration | undefined {
  const m = ISO_DURATION.exec(text);
  if (!m || text === 'P' || text.endsWith('T')) return undefined;
  const n = (i: number) => Number(m[i] ?? 0);
  return Object.freeze({ text, years: n(1), months: n(2), days: n(3) * 7 + n(4), hours: n(5), minutes: n(6), seconds: n(7) });
}

const clock = (hhmm: string): LocalClock => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

const retrySchema = z
  .object({
    attempts: z.number().int().min(1).max(100),
    backoff: z.enum(['exponential', 'fixed']),
    baseMs: z.number().int().min(0),
    maxMs: z.number().int().min(0),
    jitter: z.enum(['full', 'none']),
  })
  .strict()
  .partial();

const taskSchema = z
  .object({
    after: z.array(ID).optional(),
    map: ID.optional(),
    trigger: z.enum(TRIGGER_RULES).optional(),
    retry: retrySchema.optional(),
    timeoutMs: z.number().int().positive().optional(),
    uses: z.array(ID).optional(),
    slots: z.number().int().min(1).max(10_000).optional(),
    run: z.custom<TaskFn>((v) => typeof v === 'function', 'must be a function'),
  })
  .strict();

const dagSchema = z
  .object({
    id: ID,
    description: z.string().optional(),
    owner: z.string().optional(),
    schedule: z
      .object({ cron: z.string(), timezone: z.string(), jitter: z.union([z.string(), z.number()]).optional() })
      .strict()
      .optional(),
    window: z.object({ start: CLOCK, end: CLOCK }).strict().optional(),
    deadline: z.string().optional(),
    startDate: z.union([z.string(), z.date()]).optional(),
    catchup: z.boolean().optional(),
    maxActiveRuns: z.number().int().min(1).max(1000).optional(),
    retry: retrySchema.optional(),
    tags: z.array(z.string()).optional(),
    tasks: z.record(z.string(), z.unknown()),
  })
  .strict();

function fail(dagId: string | undefined, field: string, problem: string): never {
  throw new SpecError('dag', dagId, field, problem);
}

function parse<T>(schema: z.ZodType<T>, value: unknown, dagId: string | undefined, prefix: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [prefix, ...issue.path.map(String), ...keys].filter(Boolean).join('.');
  return fail(dagId, path || '(root)', keys.length ? 'unknown option' : issue.message);
}

function resolveRetry(dagId: string, field: string, ...layers: (Partial<RetryPolicy> | undefined)[]): RetryPolicy {
  const policy: RetryPolicy = Object.assign({}, DEFAULT_RETRY, ...layers);
  if (policy.maxMs < policy.baseMs) fail(dagId, `${field}.maxMs`, `must be at least baseMs (${policy.baseMs})`);
  return Object.freeze(policy);
}

/** Validates a DAG declaration and returns it compiled and frozen. Throws SpecError naming the field. */
export function defineDag(options: DagOptions): Dag {
  const rawId = (options as { id?: unknown } | undefined)?.id;
  const guessId = typeof rawId === 'string' ? rawId : undefined;
  const spec = parse(dagSchema, options, guessId, '');
  const dagId = spec.id;

  let timetable: CronTimetable | undefined;
  if (spec.schedule) {
    try {
      timetable = new CronTimetable(spec.schedule);
    } catch (err) {
      if (err instanceof ScheduleError) fail(dagId, `schedule.${err.field}`, err.message);
      throw err;
    }
  }
  let startDate: Date | undefined;
  if (spec.startDate !== undefined) {
    startDate = new Date(spec.startDate);
    if (Number.isNaN(startDate.getTime())) fail(dagId, 'startDate', `not a date: ${String(spec.startDate)}`);
  }
  if (spec.catchup && !spec.schedule) fail(dagId, 'catchup', 'needs a schedule');
  if (spec.window && !spec.schedule) fail(dagId, 'window', "needs a schedule (its times are in the schedule's zone)");
  if (spec.window && clock(spec.window.start) === clock(spec.window.end)) fail(dagId, 'window.end', 'must differ from start');
  let deadline: IsoDuration | undefined;
  if (spec.deadline !== undefined) {
    if (!spec.schedule) fail(dagId, 'deadline', "needs a schedule (it is counted in the schedule's zone)");
    deadline = parseIsoDuration(spec.deadline) ?? fail(dagId, 'deadline', `not an ISO 8601 duration: '${spec.deadline}' (e.g. 'PT6H', 'P1M18DT17H')`);
  }
  let jitterMs = 0;
  if (spec.schedule?.jitter !== undefined) {
    jitterMs = parseDuration(spec.schedule.jitter) ?? fail(dagId, 'schedule.jitter', "use '90s', '5m', '1h' or milliseconds");
  }

  const declared = Object.entries(spec.tasks);
  if (declared.length === 0) fail(dagId, 'tasks', 'a DAG needs at least one task');
  const partial = new Map<string, Omit<TaskDef, 'downstream'> & { downstream: string[] }>();
  for (const [taskId, declaration] of declared) {
    const field = `tasks.${taskId}`;
    ID.safeParse(taskId).success || fail(dagId, field, 'task id: use letters, digits, _ . - (at most 128)');
    const isTask = typeof declaration === 'object' && declaration !== null && (declaration as Record<symbol, unknown>)[TASK_BRAND];
    if (!isTask) fail(dagId, field, 'not a task: declare it with task({ run })');
    const opts = parse(taskSchema, (declaration as TaskDeclaration).options, dagId, field);
    const upstream = [...new Set([...(opts.after ?? []), ...(opts.map ? [opts.map] : [])])];
    partial.set(taskId, {
      id: taskId,
      uses: Object.freeze([...new Set(opts.uses ?? [])]),
      slots: opts.slots ?? 1,
      upstream,
      downstream: [],
      map: opts.map,
      trigger: opts.trigger ?? 'all_success',
      retry: resolveRetry(dagId, `${field}.retry`, spec.retry, opts.retry),
      timeoutMs: opts.timeoutMs,
      run: opts.run as TaskFn<never>,
    });
  }
  for (const [taskId, declaration] of declared) {
    const { after = [], map } = (declaration as TaskDeclaration).options;
    const edges = [...after.map((up) => ['after', up] as const), ...(map ? [['map', map] as const] : [])];
    for (const [field, up] of edges) {
      if (up === taskId) fail(dagId, `tasks.${taskId}.${field}`, 'a task cannot depend on itself');
      if (!partial.has(up)) fail(dagId, `tasks.${taskId}.${field}`, `unknown task '${up}'`);
    }
    for (const up of partial.get(taskId)!.upstream) partial.get(up)!.downstream.push(taskId);
  }

  const order = topologicalOrder(partial, dagId);
  const tasks = new Map<string, TaskDef>();
  for (const id of order) {
    const t = partial.get(id)!;
    tasks.set(id, Object.freeze({ ...t, upstream: Object.freeze(t.upstream), downstream: Object.freeze(t.downstream) }));
  }

  return Object.freeze({
    [DAG_BRAND]: true as const,
    id: dagId,
    description: spec.description ?? '',
    owner: spec.owner,
    schedule: spec.schedule ? Object.freeze({ cron: spec.schedule.cron, timezone: spec.schedule.timezone }) : undefined,
    timetable,
    jitterMs,
    window: spec.window ? Object.freeze({ start: clock(spec.window.start), end: clock(spec.window.end) }) : undefined,
    deadline,
    startDate,
    catchup: spec.catchup ?? false,
    maxActiveRuns: spec.maxActiveRuns ?? 16,
    tags: Object.freeze([...(spec.tags ?? [])]),
    tasks,
    file: undefined,
  }) as Dag;
}

/** Kahn's algorithm; a leftover task is on a cycle, and the error shows it. */
function topologicalOrder(tasks: Map<string, { upstream: readonly string[]; downstream: string[] }>, dagId: string): string[] {
  const remaining = new Map([...tasks].map(([id, t]) => [id, t.upstream.length]));
  const ready = [...remaining].filter(([, n]) => n === 0).map(([id]) => id);
  const order: string[] = [];
  while (ready.length) {
    const id = ready.shift()!;
    order.push(id);
    for (const down of tasks.get(id)!.downstream) {
      const left = remaining.get(down)! - 1;
      remaining.set(down, left);
      if (left === 0) ready.push(down);
    }
  }
  if (order.length < tasks.size) {
    const cycle = findCycle(tasks, new Set([...remaining].filter(([, n]) => n > 0).map(([id]) => id)));
    fail(dagId, `tasks.${cycle[0]}.after`, `cycle: ${cycle.join(' -> ')}`);
  }
  return order;
}

function findCycle(tasks: Map<string, { upstream: readonly string[] }>, candidates: Set<string>): string[] {
  // Walk upstream edges inside the unresolved set until a task repeats.
  const start = [...candidates][0]!;
  const path: string[] = [];
  const seen = new Map<string, number>();
  let current = start;
  while (!seen.has(current)) {
    seen.set(current, path.length);
    path.push(current);
    current = tasks.get(current)!.upstream.find((u) => candidates.has(u))!;
  }
  return [...path.slice(seen.get(current)!), current].reverse();
}
