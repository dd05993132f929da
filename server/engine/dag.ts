import { z } from 'zod';
import { SpecError } from '../../core/errors.ts';
import { CronTimetable, ScheduleError, type CronSchedule } from './timetable.ts';
import { DEFAULT_RETRY, type RetryPolicy } from './retry.ts';
import { type Duration, type DurationParts, durationMs, formatDuration, parseDurationParts, unknownOption } from './duration.ts';
import { integrationSchema, type Integration, type IntegrationOptions } from './integration-spec.ts';
import { isResource, type Resource } from './resources.ts';
import { isTaskDeclaration, TRIGGER_RULES, type RetryOptions, type TaskDeclaration, type TaskFn, type TaskRef, type TriggerRule } from './task.ts';

export { TRIGGER_RULES, task, type TaskContext, type TaskDeclaration, type TaskFn, type TaskRef, type TriggerRule } from './task.ts';

const DAG_BRAND = Symbol.for('hubflow.dag');

export interface ScheduleOptions extends CronSchedule {
  /** Spread the start of each run over [0, jitter] after it is due ('90s', '5m'), so many DAGs due at 02:00 do not start together. */
  jitter?: Duration;
  /** A six-field cron (its first field is seconds, e.g. '30 0 2 * * *') loads only with this set: runs every few seconds are rarely meant. */
  seconds?: boolean;
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
  /** The integration this DAG serves, with its SLOs; `hubflow integrations` measures them. */
  integration?: IntegrationOptions;
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
  /** A branch (`task.branch`): its result names the downstream tasks it follows. */
  readonly branch: boolean;
  /** Its upstreams that are branches: one that does not follow it skips it. */
  readonly upstreamBranches: readonly string[];
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
  readonly integration: Integration | undefined;
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
    branch: z.boolean().optional(),
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
      .object({ cron: z.string(), timezone: z.string(), jitter: duration(0).optional(), seconds: z.boolean().optional() })
      .strict()
      .optional(),
    window: z.object({ start: CLOCK, end: CLOCK }).strict().optional(),
    deadline: z.unknown().optional(),
    startDate: z.union([z.string(), z.date()]).optional(),
    catchup: z.boolean().optional(),
    maxActiveRuns: z.number().int().min(1).max(1000).optional(),
    retry: retrySchema.optional(),
    tags: z.array(z.string()).optional(),
    integration: integrationSchema(duration).optional(),
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
  return fail(dagId, path || '(root)', keys.length ? unknownOption(keys[0]) : issue.message);
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

  const integration = spec.integration && compileIntegration(dagId, spec.integration, spec.owner);

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
    // Instances of a mapped branch could disagree on one downstream task, which has one instance to follow or skip.
    if (map && opts.branch) fail(dagId, `${field}.map`, 'a branch cannot be mapped: it decides once per run; map the tasks it chooses instead');
    if (map && opts.trigger === 'always')
      fail(dagId, `${field}.trigger`, "'always' starts a task before its upstreams end, and a mapped task needs its list: use all_done");
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
      branch: opts.branch === true,
      upstreamBranches: [],
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
    if (t.branch && !t.downstream.length) fail(dagId, `tasks.${id}`, 'a branch needs downstream tasks to choose from: name it in their `after`');
    const upstreamBranches = Object.freeze(t.upstream.filter((up) => partial.get(up)!.branch));
    tasks.set(id, Object.freeze({ ...t, upstream: Object.freeze(t.upstream), downstream: Object.freeze(t.downstream), upstreamBranches }));
  }

  return Object.freeze({
    [DAG_BRAND]: true as const,
    id: dagId,
    description: spec.description ?? '',
    owner: spec.owner,
    schedule: spec.schedule
      ? Object.freeze({ cron: spec.schedule.cron, timezone: spec.schedule.timezone, ...(spec.schedule.seconds ? { seconds: true } : {}) })
      : undefined,
    timetable,
    jitterMs: spec.schedule?.jitter ?? 0,
    window: spec.window ? Object.freeze({ start: clock(spec.window.start), end: clock(spec.window.end) }) : undefined,
    deadline,
    startDate,
    catchup: spec.catchup ?? false,
    maxActiveRuns: spec.maxActiveRuns ?? 16,
    tags: Object.freeze([...(spec.tags ?? [])]),
    integration,
    tasks,
    resources: Object.freeze([...resources]),
    taskIdOf: (ref: TaskRef) => (typeof ref === 'string' ? (tasks.has(ref) ? ref : undefined) : listedTwice.has(ref) ? undefined : idOf.get(ref)),
    file: undefined,
  }) as Dag;
}
function compileIntegration(dagId: string, spec: z.infer<ReturnType<typeof integrationSchema>>, dagOwner: string | undefined): Integration {
  const { latency, successRate, deadLetters } = spec.slo;
  if (latency && latency.p99 < latency.p50) fail(dagId, 'integration.slo.latency.p99', `must be at least p50 (${formatDuration(latency.p50)})`);
  const slo = {
    ...(latency ? { latencyMs: Object.freeze({ ...latency }) } : {}),
    ...(successRate !== undefined ? { successRate } : {}),
    ...(deadLetters ? { deadLetters: Object.freeze({ depth: deadLetters.depth, dwellMs: deadLetters.dwell }) } : {}),
  };
  if (!Object.keys(slo).length) fail(dagId, 'integration.slo', 'declare at least one SLO: latency, successRate or deadLetters');
  return Object.freeze({ name: spec.name, target: spec.target, pattern: spec.pattern, owner: spec.owner ?? dagOwner, slo: Object.freeze(slo) });
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
