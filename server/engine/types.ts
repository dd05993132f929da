import type { RawBuilder, Transaction } from 'kysely';
import type { Config } from '../../core/config.ts';
import type { Logger } from '../../core/log.ts';
import type { Store } from '../store/db.ts';
import type { DagRunRow, RunType, StoreSchema } from '../store/schema.ts';
import type { Dispatchable } from './advance.ts';
import type { Dag } from './dag.ts';
import type { Dispatcher } from './dispatch.ts';
import type { Escalate } from './escalation.ts';
import type { DagRegistry } from './loader.ts';

/*
 * The types the engine's rooms share: run lifecycle (runs.ts, cancel.ts, clear.ts), task
 * lifecycle (tasks.ts, complete.ts), dispatch (handoff.ts) and recovery (recovery.ts). Each
 * takes an EngineContext, which Engine (engine.ts) implements, so none imports the class that
 * composes them.
 */

export type Trx = Transaction<StoreSchema>;
export type RawWrite = RawBuilder<unknown>;

export interface NewRun {
  logicalDate: Date;
  intervalStart: Date;
  intervalEnd: Date;
  runType: RunType;
  /** When it may start; absent: now, by the store's clock (a run asked for by hand). */
  dueAt?: Date;
  conf?: Record<string, unknown>;
}

export interface Completion {
  tiId: number;
  runId: number;
  dagId: string;
  taskId: string;
  attemptId: number;
  outcome: 'success' | 'failed' | 'skipped';
  /** JSON text of the task's result. */
  result?: string;
  /** Why it failed, or (skipped) the task's reason. */
  error?: unknown;
}

/** A task instance a worker has just started, with what its context needs. */
export interface StartedTask {
  id: number;
  run_id: number;
  dag_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  max_tries: number;
  map_item: unknown;
  attempt_id: number;
  logical_date: Date;
  interval_start: Date;
  interval_end: Date;
  conf: Record<string, unknown>;
}

/** What the engine's parts read and call on one another. */
export interface EngineContext {
  readonly db: Store;
  readonly dags: DagRegistry;
  readonly dispatcher: Dispatcher;
  readonly log: Logger;
  readonly config: Config;
  readonly escalate: Escalate;
  readonly workerName: string;
  /** The loaded DAG; NotFoundError when there is none. */
  dag(dagId: string): Dag;
  /** A transaction, run again on a conflict or a server restart (see retrying.ts). */
  transaction<T>(fn: (trx: Trx) => Promise<T>): Promise<T>;
  /** Hands queued instances to BullMQ (see handoff.ts). */
  dispatch(items: readonly Dispatchable[]): Promise<void>;
  /** Starts a DAG's queued runs within its limits (see runs.ts). */
  activate(dagId: string): Promise<DagRunRow[]>;
}
