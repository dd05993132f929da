import type { Config } from '../../core/config.ts';
import { NotFoundError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../store/db.ts';
import type { DagRunRow, RunType } from '../store/schema.ts';
import type { Dispatchable } from './advance.ts';
import { cancelRuns, type CancelSelection, type CancelledRun } from './cancel.ts';
import { clearTasks, type ClearOptions } from './clear.ts';
import type { Dag } from './dag.ts';
import type { Dispatcher } from './dispatch.ts';
import type { Escalate } from './escalation.ts';
import { dispatchInstances, markDeferred } from './handoff.ts';
import type { DagRegistry } from './loader.ts';
import { sweep } from './recovery.ts';
import { withRetry } from './retrying.ts';
import { activate, backfill, createRun, testRun, triggerRun } from './runs.ts';
import { TaskLifecycle } from './tasks.ts';
import type { Completion, EngineContext, NewRun, StartedTask, Trx } from './types.ts';

export type { StartedTask } from './types.ts';

/**
 * The engine's state transitions. Every decision is one PostgreSQL transaction; BullMQ is told
 * afterwards, and what it misses (a crash between commit and enqueue, a flushed Redis) the
 * recovery sweep puts back. This class only composes the engine's parts: the run lifecycle
 * (runs.ts, cancel.ts, clear.ts), the task lifecycle (tasks.ts, complete.ts), dispatch
 * (handoff.ts) and recovery (recovery.ts), each written against EngineContext (types.ts).
 */
export class Engine implements EngineContext {
  readonly #tasks: TaskLifecycle;

  constructor(
    readonly db: Store,
    readonly dags: DagRegistry,
    readonly dispatcher: Dispatcher,
    readonly log: Logger,
    readonly config: Config,
    readonly escalate: Escalate,
    readonly workerName = `${process.pid}`,
  ) {
    this.#tasks = new TaskLifecycle(this);
  }

  /** Gives back the connections the engine holds; the store's pool closes after. */
  close(): Promise<void> {
    return this.#tasks.close();
  }

  dag(dagId: string): Dag {
    const dag = this.dags.dags.get(dagId);
    if (!dag) throw new NotFoundError(`no DAG '${dagId}' is loaded`);
    return dag;
  }

  /**
   * Runs `fn` in a transaction, again on a deadlock or serialization failure, or when the
   * server ended the connection it ran on (a restart or failover): each of these is reported
   * instead of a commit, so the transaction did not happen.
   */
  transaction<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    return withRetry(() => this.db.transaction().execute(fn));
  }

  // Run lifecycle (runs.ts, cancel.ts, clear.ts).

  /** Creates a run and its task instances, queued; null when the DAG already has a run at that logical date. */
  createRun(dag: Dag, run: NewRun, trx?: Trx): Promise<DagRunRow | null> {
    return createRun(this, dag, run, trx);
  }

  /** A manual run (Airflow's trigger): logical date now unless given; conf is handed to every task. */
  triggerRun(dagId: string, options: { logicalDate?: Date; conf?: Record<string, unknown>; runType?: RunType } = {}): Promise<DagRunRow> {
    return triggerRun(this, dagId, options);
  }

  /** Backfill runs for the intervals in [from, to]; see runs.ts. */
  backfill(dagId: string, from: Date, to: Date): Promise<DagRunRow[]> {
    return backfill(this, dagId, from, to);
  }

  /** A run for `hubflow dags test`, on a queue of its own; see runs.ts. */
  testRun(dagId: string, logicalDate: Date, conf: Record<string, unknown> = {}): Promise<{ run: DagRunRow; queue: string }> {
    return testRun(this, dagId, logicalDate, conf);
  }

  /** Starts queued runs of a DAG within its maxActiveRuns; see runs.ts. */
  activate(dagId: string): Promise<DagRunRow[]> {
    return activate(this, dagId);
  }

  /** Cancels runs; see cancel.ts. */
  cancelRuns(selection: CancelSelection): Promise<CancelledRun[]> {
    return cancelRuns(this, selection);
  }

  /** Airflow's clear; see clear.ts. */
  clear(runId: number, options: ClearOptions = {}): Promise<{ cleared: string[] }> {
    return clearTasks(this, runId, options);
  }

  // Dispatch (handoff.ts) and recovery (recovery.ts).

  /** Hands queued instances to BullMQ, deferring those whose resources are in blackout. */
  dispatch(items: readonly Dispatchable[]): Promise<void> {
    return dispatchInstances(this, items);
  }

  /** A worker found a resource in blackout when the job came due: the instance waits again. */
  markDeferred(tiId: number, until: Date, reason: string): Promise<void> {
    return markDeferred(this.db, [{ id: tiId, until, reason }]);
  }

  /** The recovery sweep; see recovery.ts. */
  sweep(runIds?: readonly number[]): Promise<number> {
    return sweep(this, runIds);
  }

  // Task lifecycle (tasks.ts, complete.ts).

  /** Marks a task instance running and opens its attempt; null when it must not run (finished, cleared, out of tries). */
  startTask(tiId: number, generation: number, pooled = false): Promise<StartedTask | null | 'no-slot'> {
    return this.#tasks.startTask(tiId, generation, pooled);
  }

  /** A job arrived for an instance that cannot start; see tasks.ts. */
  settleUnstartable(tiId: number, generation: number): Promise<void> {
    return this.#tasks.settleUnstartable(tiId, generation);
  }

  /** Records a finished attempt; resolves once committed and its downstream work is enqueued. */
  completeTask(c: Completion): Promise<void> {
    return this.#tasks.completeTask(c);
  }

  /** A failed try that will be retried: the instance waits out its backoff as up_for_retry. */
  recordRetry(tiId: number, attemptId: number, error: unknown, delayMs: number): Promise<void> {
    return this.#tasks.recordRetry(tiId, attemptId, error, delayMs);
  }

  heartbeat(tiIds: number[]): Promise<void> {
    return this.#tasks.heartbeat(tiIds);
  }

  /** Which of these instances a run's cancellation has ended, with its reason. */
  cancelledAmong(tiIds: number[]): Promise<{ id: number; reason: string }[]> {
    return this.#tasks.cancelledAmong(tiIds);
  }
}
