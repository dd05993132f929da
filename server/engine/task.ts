import type { Logger } from '../../core/log.ts';
import type { Duration } from './duration.ts';
import type { TaskRecords } from './records.ts';
import type { HandleOf, Resource } from './resources.ts';

/**
 * A task as the DAG author declares it (`task({ ... })`) and the context its function receives.
 * References between tasks are typed: `ctx.upstream(extract)` has extract's return type.
 */

/** Airflow's trigger rules (but its setup/teardown ones). */
export const TRIGGER_RULES = [
  'all_success',
  'always',
  'all_done',
  'all_done_min_one_success',
  'all_failed',
  'all_skipped',
  'one_failed',
  'one_success',
  'one_done',
  'none_failed',
  'none_failed_min_one_success',
  'none_skipped',
] as const;
export type TriggerRule = (typeof TRIGGER_RULES)[number];

const TASK_BRAND = Symbol.for('hubflow.task');
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

/** `ResultOf` as a downstream with this leniency sees it: a failed instance of a mapped upstream is a null in the list. */
type UpstreamOf<D, L extends boolean> = D extends TaskDeclaration<infer O, infer M> ? (M extends true ? MaybeNull<O, L>[] : MaybeNull<O, L>) : unknown;

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
  upstream<D extends TaskDeclaration>(ref: D): Promise<UpstreamOf<D, Lenient>>;
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
  /**
   * Ends this try as `skipped`, with the reason kept and shown (Airflow's AirflowSkipException):
   * throws a SkipTaskError, so nothing after it runs. Never retried; downstream tasks follow
   * their trigger rules.
   */
  skip(reason: string): never;
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
export type CompiledOptions = Omit<TaskOptions, 'map' | 'uses' | 'trigger' | 'run'> & {
  map?: TaskRef;
  uses?: Uses;
  trigger?: TriggerRule;
  branch?: boolean;
  run: TaskFn<never>;
};

/** What a branch returns: the direct downstream task(s) to follow, by id or reference; null or [] follows none. */
export type BranchTarget = TaskRef | readonly TaskRef[] | null | undefined;

/** A branch's options: those of a task but `map` (a branch decides once per run). */
export interface BranchOptions<U extends Uses = [], T extends TriggerRule = 'all_success'> extends Omit<TaskOptions<unknown, undefined, U, T>, 'map' | 'run'> {
  run: (ctx: TaskContext<never, HandlesOf<U>, Lenient<T>>) => BranchTarget | Promise<BranchTarget>;
}

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

/**
 * Airflow's `@task.branch`: a task whose `run` returns which of its direct downstream tasks to
 * follow (an id or reference, a list of them, or null / [] for none). The others are skipped,
 * and the skip flows on by each task's trigger rule. Its result, for `ctx.upstream`, is the
 * list of the ids it followed.
 */
task.branch = function branch<U extends Uses = [], T extends TriggerRule = 'all_success'>(options: BranchOptions<U, T>): TaskDeclaration<string[], false> {
  return Object.freeze({ [TASK_BRAND]: true as const, options: { ...(options as unknown as CompiledOptions), branch: true } });
};

export function isTaskDeclaration(value: unknown): value is TaskDeclaration {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[TASK_BRAND] === true;
}
