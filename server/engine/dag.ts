import { z } from 'zod';
import { SpecError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { CronTimetable, ScheduleError, type CronSchedule } from './timetable.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
import { type Duration, type DurationParts, durationMs, formatDuration, parseDurationParts } from './duration.ts';
import { isResource, type HandleOf, type Resource } from './resources.ts';
import type { TaskRecords } from './records.ts';

export const TRIGGER_RULES = ['all_success', 'all_done', 'one_failed', 'one_success', 'none_failed'] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

const TASK_BRAND = Symbol.for('hubflow.task');
const DAG_BRAND = Symbol.for('hubflow.dag');
declare const RESULT: unique symbol;

/**
 * A task as `task()` returns it, before a DAG gives it its id. A downstream names it by this
 * reference (`after: [extract]`, `map: extract`, `ctx.upstream(extract)`), typed from what its
 * `run` returns; `Mapped` says whether it fans out (a downstream then gets the list).
 */
export interface TaskDeclaration<Out = unknown, Mapped extends boolean = boolean> {
  readonly [TASK_BRAND]: true;
  readonly options: CompiledOptions;
  /** Type only: never set. */
  readonly [RESULT]?: { out: Out; mapped: Mapped };
}

/** An upstream: its declaration (typed), or its id in the DAG's `tasks` (untyped, for DAGs built from data). */
export type TaskRef = TaskDeclaration | string;

/** What `ctx.upstream(ref)` gives: the task's result, the list of its instances' results when mapped. */
export type ResultOf<D> = D extends TaskDeclaration<infer O, infer M> ? (M extends true ? O[] : O) : unknown;

/** Under a trigger other than all_success an upstream may have failed or been skipped: its result is then null. */
type MaybeNull<T, Lenient extends boolean> = Lenient extends true ? T | null : T;

/** A mapped task's element: one of the list its `map` upstream returned (or one instance's result, when that is mapped too). */
export type ItemOf<M> = M extends TaskDeclaration<infer O, infer Mapped> ? (Mapped extends true ? O : O extends readonly (infer E)[] ? E : never) : never;

type Lenient<T extends TriggerRule> = T extends 'all_success' ? false : true;
/** An upstream named by id is untyped: the run function says what it expects (`TaskContext<Scope>`). */
type ItemFor<M, L extends boolean> = M extends string ? never : MaybeNull<ItemOf<M>, L>;

/** The resources a task uses: named (`{ hub: hubDb }`, each opened and handed over as ctx.resources.hub), or listed, for their blackouts and slots only. */
export type Uses = Readonly<Record<string, Resource>> | readonly (Resource | string)[];
export type HandlesOf<U> = U extends readonly unknown[] ? Record<never, never> : { readonly [K in keyof U]: HandleOf<U[K]> };

/** What a task function receives. Everything a task needs to know about where it runs; no store, no config. */
export interface TaskContext<Item = unknown, Resources = unknown, Lenient extends boolean = boolean> {
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
  upstream<D extends TaskDeclaration>(ref: D): Promise<MaybeNull<ResultOf<D>, Lenient>>;
  upstream<T = unknown>(taskId: string): Promise<T>;
  /** The handles of the resources named in `uses`, opened on first use and shared by the process. */
  readonly resources: Resources;
  /** The run's records the engine keeps: rejects, reconciliations, upstream instances' states. */
  readonly records: TaskRecords;
  readonly log: Logger;
  /** Aborted when the task passes its `timeout` or the worker shuts down. */
  readonly signal: AbortSignal;
  /**
   * Escalates without failing the task (a log line and HUBFLOW_ALERT_WEBHOOK), for what an
   * operator must see though the run goes on: a critical reconciliation mismatch, say.
   */
  alert(message: string, details?: Record<string, unknown>): Promise<void>;
}

export type TaskFn<Item = unknown> = (ctx: TaskContext<Item>) => unknown;

/** A retry policy as an author writes it: `{ attempts: 4, base: '2s', max: '5m' }`. */
export interface RetryOptions {
  /** Every try, the first included. */
  attempts?: number;
  backoff?: 'exponential' | 'fixed';
  /** The first delay (doubled for each further failure with 'exponential'). */
  base?: Duration;
  /** Cap on any one delay. */
  max?: Duration;
  jitter?: 'full' | 'none';
}

export interface TaskOptions<R = unknown, M extends TaskRef | undefined = undefined, U extends Uses = [], T extends TriggerRule = 'all_success'> {
  /** Upstream tasks (references, or ids); this task runs when they satisfy `trigger`. */
  after?: readonly TaskRef[];
  /** Fan out: one instance per element of the list this upstream task returned. */
  map?: M;
  trigger?: T;
  retry?: RetryOptions;
  /** How long one try may run: '30s', '20m', '1h'. */
  timeout?: Duration;
  /** Resources (declared with defineResource) this task touches: it never starts inside their blackouts, and gets their handles. */
  uses?: U;
  /** Slots this task takes in each pooled resource it uses (default 1). */
  slots?: number;
  run: (ctx: TaskContext<ItemFor<M, Lenient<T>>, HandlesOf<U>, Lenient<T>>) => R;
}

/** The options as stored on a declaration, checked by defineDag. */
type CompiledOptions = Omit<TaskOptions, 'map' | 'uses' | 'trigger' | 'run'> & { map?: TaskRef; uses?: Uses; trigger?: TriggerRule; run: TaskFn<never> };

/** A task mapped over an upstream named by id, its element type given: `task<string>({ map: 'tenants', run })`. */
export interface UntypedMapOptions<Item> extends Omit<TaskOptions<unknown, string, Uses, TriggerRule>, 'map' | 'run'> {
  map: string;
  run: (ctx: TaskContext<Item, Readonly<Record<string, unknown>>>) => unknown;
}

/** Declares a task. Validation happens in `defineDag`, where the task's place in the graph is known. */
export function task<Item>(options: UntypedMapOptions<Item>): TaskDeclaration<unknown, true>;
export function task<R, M extends TaskRef | undefined = undefined, U extends Uses = [], T extends TriggerRule = 'all_success'>(
  options: TaskOptions<R, M, U, T>,
): TaskDeclaration<Awaited<R>, M extends undefined ? false : true>;
export function task(options: TaskOptions<unknown, TaskRef | undefined, Uses, TriggerRule> | UntypedMapOptions<unknown>): TaskDeclaration {
  return Object.freeze({ [TASK_BRAND]: true as const, options: options as unknown as CompiledOptions });
}

function isTaskDeclaration(value: unknown): value is TaskDeclaration {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TASK_BRAND] === true;
}

export interface ScheduleOptions extends CronSchedule {
  /** Spread the start of each run over [0, jitter] after it is due ('90s', '5m'), so many DAGs due at 02:00 do not start together. */
  jitter?: Duration;
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
   * When a run must be finished, counted from its logical date in the schedule's zone, in
   * calendar terms: '6h' (six hours after), '1mo18d17h' (a monthly filing due on the 19th of the
   * next month at 17:00). A run that finishes late, or is projected to, raises an SLA alert.
   */
  deadline?: Duration;
  /** First logical date the scheduler considers. Without it, scheduling starts at the latest complete interval. */
  startDate?: string | Date;
  /** Run every missed interval, oldest first (default false: only the latest). */
  catchup?: boolean;
  maxActiveRuns?: number;
  /** Default retry policy of every task; a task's own `retry` overrides fields of it. */
  retry?: RetryOptions;
  tags?: readonly string[];
  tasks: Record<string, TaskDeclaration>;
}

export interface TaskDef {
  readonly id: string;
  /** Ids of the resources it uses (blackouts, slots). */
  readonly uses: readonly string[];
  /** The handles it receives: ctx.resources[name] is the opened resource of that id. */
  readonly handles: readonly (readonly [name: string, resourceId: string])[];
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
  readonly deadline: DurationParts | undefined;
  readonly startDate: Date | undefined;
  readonly catchup: boolean;
  readonly maxActiveRuns: number;
  readonly tags: readonly string[];
  /** Tasks in a topological order (upstreams first). */
  readonly tasks: ReadonlyMap<string, TaskDef>;
  /** The resources its tasks name by object: a registry without them declared takes them from here. */
  readonly resources: readonly Resource[];
  /** The id a declaration has in this DAG, for ctx.upstream(ref). */
  taskIdOf(ref: TaskRef): string | undefined;
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

const clock = (hhmm: string): LocalClock => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** A duration field: its ms, checked by the one parser (durationMs), which names what is wrong. */
const duration = (min: number) =>
  z.unknown().transform((value, ctx) => {
    const ms = durationMs(value);
    if (typeof ms === 'string') ctx.addIssue({ code: 'custom', message: ms });
    else if (ms < min) ctx.addIssue({ code: 'custom', message: `must be at least ${min} ms` });
    return typeof ms === 'number' ? ms : 0;
  });

const retrySchema = z
  .object({
    attempts: z.number().int().min(1).max(100),
    backoff: z.enum(['exponential', 'fixed']),
    base: duration(0),
    max: duration(0),
    jitter: z.enum(['full', 'none']),
  })
  .strict()
  .partial();

const REF = z.union([ID, z.custom<TaskDeclaration>(isTaskDeclaration, 'a task id or a task declared with task()')]);
const USES = z.union([
  z.array(z.union([ID, z.custom<Resource>(isResource, 'a resource declared with defineResource, or its id')])),
  z.record(z.string(), z.custom<Resource>(isResource, 'a resource declared with defineResource')),
]);

const taskSchema = z
  .object({
    after: z.array(REF).optional(),
    map: REF.optional(),
    trigger: z.enum(TRIGGER_RULES).optional(),
    retry: retrySchema.optional(),
    timeout: duration(1).optional(),
    uses: USES.optional(),
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
      .object({ cron: z.string(), timezone: z.string(), jitter: duration(0).optional() })
      .strict()
      .optional(),
    window: z.object({ start: CLOCK, end: CLOCK }).strict().optional(),
    deadline: z.unknown().optional(),
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

function parse<T>(schema: z.ZodType<T, unknown>, value: unknown, dagId: string | undefined, prefix: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0]!;
  const keys = issue.code === 'unrecognized_keys' ? issue.keys : [];
  const path = [prefix, ...issue.path.map(String), ...keys].filter(Boolean).join('.');
  return fail(dagId, path || '(root)', keys.length ? 'unknown option' : issue.message);
}

type ParsedRetry = z.infer<typeof retrySchema>;

function resolveRetry(dagId: string, field: string, ...layers: (ParsedRetry | undefined)[]): RetryPolicy {
  const policy: RetryPolicy = { ...DEFAULT_RETRY };
  for (const l of layers) {
    if (!l) continue;
    if (l.attempts !== undefined) policy.attempts = l.attempts;
    if (l.backoff !== undefined) policy.backoff = l.backoff;
    if (l.base !== undefined) policy.baseMs = l.base;
    if (l.max !== undefined) policy.maxMs = l.max;
    if (l.jitter !== undefined) policy.jitter = l.jitter;
  }
  if (policy.maxMs < policy.baseMs) fail(dagId, `${field}.max`, `must be at least base (${formatDuration(policy.baseMs)})`);
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
  let deadline: DurationParts | undefined;
  if (spec.deadline !== undefined) {
    if (!spec.schedule) fail(dagId, 'deadline', "needs a schedule (it is counted in the schedule's zone)");
    const parts = parseDurationParts(spec.deadline);
    deadline = typeof parts === 'string' ? fail(dagId, 'deadline', `${parts}; e.g. '6h', '1mo18d17h'`) : parts;
  }

  const declared = Object.entries(spec.tasks);
  if (declared.length === 0) fail(dagId, 'tasks', 'a DAG needs at least one task');
  // A reference names its task by identity: the id it is listed under in `tasks`.
  const idOf = new Map<TaskDeclaration, string>();
  const listedTwice = new Map<TaskDeclaration, string[]>();
  for (const [taskId, declaration] of declared) {
    if (!isTaskDeclaration(declaration)) continue;
    const first = idOf.get(declaration);
    if (first === undefined) idOf.set(declaration, taskId);
    else listedTwice.set(declaration, [...(listedTwice.get(declaration) ?? [first]), taskId]);
  }
  const resolve = (ref: TaskRef, field: string): string => {
    if (typeof ref === 'string') return ref;
    const twice = listedTwice.get(ref);
    if (twice) fail(dagId, field, `the task it names is listed ${twice.length} times (${twice.join(', ')}): name it by id`);
    return idOf.get(ref) ?? fail(dagId, field, 'a task not listed in this DAG: add it to tasks (references name tasks of the same DAG)');
  };

  const partial = new Map<string, Omit<TaskDef, 'downstream'> & { downstream: string[] }>();
  const resources = new Set<Resource>();
  for (const [taskId, declaration] of declared) {
    const field = `tasks.${taskId}`;
    ID.safeParse(taskId).success || fail(dagId, field, 'task id: use letters, digits, _ . - (at most 128)');
    if (!isTaskDeclaration(declaration)) fail(dagId, field, 'not a task: declare it with task({ run })');
    const opts = parse(taskSchema, declaration.options, dagId, field);
    const after = (opts.after ?? []).map((ref, i) => resolve(ref, `${field}.after[${i}]`));
    const map = opts.map === undefined ? undefined : resolve(opts.map, `${field}.map`);
    const named = opts.uses && !Array.isArray(opts.uses) ? Object.entries(opts.uses as Record<string, Resource>) : [];
    const listed = Array.isArray(opts.uses) ? (opts.uses as (Resource | string)[]) : named.map(([, r]) => r);
    for (const r of listed) if (typeof r !== 'string') resources.add(r);
    partial.set(taskId, {
      id: taskId,
      uses: Object.freeze([...new Set(listed.map((r) => (typeof r === 'string' ? r : r.id)))]),
      handles: Object.freeze(named.map(([name, r]) => Object.freeze([name, r.id] as const))),
      slots: opts.slots ?? 1,
      upstream: [...new Set([...after, ...(map ? [map] : [])])],
      downstream: [],
      map,
      trigger: opts.trigger ?? 'all_success',
      retry: resolveRetry(dagId, `${field}.retry`, spec.retry, opts.retry),
      timeoutMs: opts.timeout,
      run: opts.run as TaskFn<never>,
    });
  }
  for (const [taskId, declaration] of declared) {
    const { after = [], map } = (declaration as TaskDeclaration).options;
    const edges = [...after.map((up, i) => [`after[${i}]`, up] as const), ...(map ? [['map', map] as const] : [])];
    for (const [field, ref] of edges) {
      const up = resolve(ref, `tasks.${taskId}.${field}`);
      const where = `tasks.${taskId}.${field.replace(/\[\d+\]$/, '')}`;
      if (up === taskId) fail(dagId, where, 'a task cannot depend on itself');
      if (!partial.has(up)) fail(dagId, where, `unknown task '${up}'`);
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
    jitterMs: spec.schedule?.jitter ?? 0,
    window: spec.window ? Object.freeze({ start: clock(spec.window.start), end: clock(spec.window.end) }) : undefined,
    deadline,
    startDate,
    catchup: spec.catchup ?? false,
    maxActiveRuns: spec.maxActiveRuns ?? 16,
    tags: Object.freeze([...(spec.tags ?? [])]),
    tasks,
    resources: Object.freeze([...resources]),
    taskIdOf: (ref: TaskRef) => (typeof ref === 'string' ? (tasks.has(ref) ? ref : undefined) : listedTwice.has(ref) ? undefined : idOf.get(ref)),
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
