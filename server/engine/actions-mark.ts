import { sql } from 'kysely';
import { ConflictError, InvalidInputError, NotFoundError } from '../../core/errors.ts';
import { LIVE_TI_STATES, type DagRunRow, type TaskInstanceRow, type TiState } from '../store/schema.ts';
import { advanceRun, applyAdvance, type Dispatchable } from './advance.ts';
import { resetTasks } from './clear.ts';
import type { Dag } from './dag.ts';
import type { JobRef } from './dispatch.ts';
import type { EngineContext, Trx } from './types.ts';

/*
 * Marking, as Airflow's "mark success" and "mark failed": the operator says how a task (or a
 * whole run) ended, instead of running it. A running try is never marked: its worker would go
 * on with work whose outcome no one records, so a running task is waited for, or its run cancelled.
 */

export type MarkState = 'success' | 'failed';

/** Who acted, and why: recorded in the log, and in a marked instance's error. */
export interface Actor {
  by: string;
  reason?: string;
}

export interface MarkedTask {
  run: number;
  task: string;
  state: MarkState;
  /** Map indexes (-1: the task is not mapped or not expanded) whose state changed. */
  marked: number[];
  /** Downstream tasks reset to be decided again by their trigger rules. */
  reset: string[];
  /** The run's state afterwards. */
  runState: DagRunRow['state'];
}

export interface MarkedRun {
  run: number;
  dag: string;
  state: MarkState;
  /** Instances whose state changed. */
  instances: number;
}

/** Instances that hold a BullMQ job which must go once they are marked. */
const JOB_HOLDING: ReadonlySet<TiState> = new Set(['queued', 'deferred', 'up_for_retry']);
const LIVE: ReadonlySet<TiState> = new Set(LIVE_TI_STATES);
/** Not finished, and not running: marking a run ends these. */
const WAITING: readonly TiState[] = ['scheduled', 'queued', 'deferred', 'up_for_retry'];

const describe = (actor: Actor, what: string) => `${what} by ${actor.by}${actor.reason ? `: ${actor.reason}` : ''}`;
const markedError = (actor: Actor, what: string) => JSON.stringify({ name: 'MarkedFailed', message: describe(actor, what) });

/** Ends marked instances in the state given; a new generation makes any job still about them stale. */
async function endMarked(trx: Trx, ids: number[], state: TiState, error: string | null): Promise<void> {
  await trx
    .updateTable('task_instances')
    .set({
      state,
      generation: sql`generation + 1`,
      error,
      ended_at: sql`now()`,
      next_try_at: null,
      heartbeat_at: null,
      deferred_until: null,
      deferred_reason: null,
    })
    .where('id', 'in', ids)
    .execute();
}

async function lockRun(trx: Trx, runId: number): Promise<DagRunRow> {
  const run = await trx.selectFrom('dag_runs').selectAll().where('id', '=', runId).forUpdate().executeTakeFirst();
  if (!run) throw new NotFoundError(`no run ${runId}`);
  if (run.run_type === 'test') throw new ConflictError(`run ${runId} is a test run, which only its own \`dags test\` process runs`);
  return run;
}

function refuseRunning(tis: readonly TaskInstanceRow[], runId: number): void {
  const running = tis.find((t) => t.state === 'running');
  if (!running) return;
  const name = `${running.task_id}${running.map_index >= 0 ? `[${running.map_index}]` : ''}`;
  throw new ConflictError(`task '${name}' of run ${runId} is running: wait for its try to end, or cancel the run (hubflow runs cancel ${runId})`);
}

const jobRefs = (run: DagRunRow, tis: readonly TaskInstanceRow[]): JobRef[] =>
  tis.filter((t) => JOB_HOLDING.has(t.state)).map((t) => ({ runId: run.id, taskId: t.task_id, mapIndex: t.map_index, generation: t.generation }));

/**
 * The downstream tasks a mark decides again: those that failed, or were never run because of
 * what their upstreams did (upstream_failed, or skipped without a try). A marked success lets
 * them proceed; a marked failure applies their trigger rules to it.
 */
function undecided(dag: Dag, taskId: string, tis: readonly TaskInstanceRow[]): Set<string> {
  const below = new Set<string>();
  const visit = (id: string) => {
    for (const d of dag.tasks.get(id)!.downstream) {
      if (below.has(d)) continue;
      below.add(d);
      visit(d);
    }
  };
  visit(taskId);
  const redo = new Set<string>();
  const busy = new Set<string>();
  for (const t of tis) {
    if (!below.has(t.task_id)) continue;
    if (t.state === 'failed' || t.state === 'upstream_failed' || (t.state === 'skipped' && t.try_number === 0)) redo.add(t.task_id);
    if (LIVE.has(t.state)) busy.add(t.task_id);
  }
  // A task with an instance still at work (a mapped one's sibling, say) is left to finish.
  for (const id of busy) redo.delete(id);
  return redo;
}

/**
 * Marks a task's instances (or one map index of it) success or failed. Downstream tasks that
 * failed or were decided by the old state are reset and decided again; a finished run reopens
 * and ends again by what its instances say. Marking success resolves the instances' open dead
 * letters as `marked_success`.
 */
export async function markTask(
  engine: EngineContext,
  runId: number,
  taskId: string,
  options: { state: MarkState; mapIndex?: number; actor: Actor },
): Promise<MarkedTask> {
  const { state, mapIndex, actor } = options;
  const outcome = await engine.transaction(async (trx) => {
    const run = await lockRun(trx, runId);
    const dag = engine.dag(run.dag_id);
    const task = dag.tasks.get(taskId);
    if (!task) throw new NotFoundError(`DAG '${dag.id}' has no task '${taskId}'`);
    if (mapIndex !== undefined && !task.map) throw new InvalidInputError(`map: task '${taskId}' of DAG '${dag.id}' is not mapped`);
    if (run.state === 'queued') throw new ConflictError(`run ${runId} has not started yet; mark its tasks once it runs, or mark the whole run`);
    if (run.state === 'cancelled') throw new ConflictError(`run ${runId} was cancelled; clear it (hubflow tasks clear ${runId}) to run it again`);
    const tis = await trx.selectFrom('task_instances').selectAll().where('run_id', '=', runId).execute();
    const mine = tis.filter((t) => t.task_id === taskId && (mapIndex === undefined || t.map_index === mapIndex));
    if (!mine.length) throw new NotFoundError(`task '${taskId}' of run ${runId} has no instance with map index ${mapIndex}`);
    refuseRunning(mine, runId);
    const changed = mine.filter((t) => t.state !== state);
    if (changed.length) {
      await endMarked(
        trx,
        changed.map((t) => t.id),
        state,
        state === 'failed' ? markedError(actor, 'marked failed') : null,
      );
      if (state === 'success') {
        await trx
          .updateTable('dead_letters')
          .set({ resolved_at: sql`now()`, resolution: 'marked_success', resolved_by: actor.by })
          .where(
            'ti_id',
            'in',
            changed.map((t) => t.id),
          )
          .where('resolved_at', 'is', null)
          .execute();
      }
    }
    const reset = changed.length ? undecided(dag, taskId, tis) : new Set<string>();
    await resetTasks(trx, runId, dag, reset, { resolution: 'cleared', by: actor.by });
    const reopened =
      run.state === 'running' || !changed.length
        ? run
        : await trx.updateTable('dag_runs').set({ state: 'running', ended_at: null }).where('id', '=', runId).returningAll().executeTakeFirstOrThrow();
    let dispatch: Dispatchable[] = [];
    let runState = reopened.state;
    if (changed.length) {
      const result = await applyAdvance(trx, await advanceRun(trx, reopened, dag, [...task.downstream, ...reset]));
      dispatch = result.dispatch;
      runState = result.finished?.state ?? reopened.state;
    }
    return { run, jobs: jobRefs(run, changed), dispatch, changed, reset: [...reset], runState };
  });
  await engine.dispatcher.remove(outcome.jobs);
  await engine.dispatch(outcome.dispatch);
  engine.log.info(
    { event: 'task_marked', dagId: outcome.run.dag_id, runId, taskId, mapIndex, state, actor: actor.by, reason: actor.reason, reset: outcome.reset },
    `run ${runId}: ${taskId}${mapIndex === undefined ? '' : `[${mapIndex}]`} ${describe(actor, `marked ${state}`)}`,
  );
  if (outcome.runState !== 'running') await engine.activate(outcome.run.dag_id);
  return { run: runId, task: taskId, state, marked: outcome.changed.map((t) => t.map_index), reset: outcome.reset, runState: outcome.runState };
}

/**
 * Ends a run as Airflow's mark run success / failed. Success: every instance that is not
 * success or skipped becomes success, and the run's open dead letters are resolved as
 * `marked_success`. Failed: the instances that have not run yet are skipped; finished ones keep
 * their state. Either way the run ends, and the DAG's next queued run may start.
 */
export async function markRun(engine: EngineContext, runId: number, options: { state: MarkState; actor: Actor }): Promise<MarkedRun> {
  const { state, actor } = options;
  const outcome = await engine.transaction(async (trx) => {
    const run = await lockRun(trx, runId);
    const tis = await trx.selectFrom('task_instances').selectAll().where('run_id', '=', runId).execute();
    refuseRunning(tis, runId);
    const changed = state === 'success' ? tis.filter((t) => t.state !== 'success' && t.state !== 'skipped') : tis.filter((t) => WAITING.includes(t.state));
    if (changed.length) {
      await endMarked(
        trx,
        changed.map((t) => t.id),
        state === 'success' ? 'success' : 'skipped',
        state === 'success' ? null : markedError(actor, 'run marked failed'),
      );
    }
    if (state === 'success') {
      await trx
        .updateTable('dead_letters')
        .set({ resolved_at: sql`now()`, resolution: 'marked_success', resolved_by: actor.by })
        .where('run_id', '=', runId)
        .where('resolved_at', 'is', null)
        .execute();
    }
    await trx.updateTable('dag_runs').set({ state, ended_at: sql`now()`, started_at: sql`coalesce(started_at, now())` }).where('id', '=', runId).execute();
    return { run, jobs: jobRefs(run, changed), changed: changed.length };
  });
  await engine.dispatcher.remove(outcome.jobs);
  engine.log.info(
    { event: 'run_marked', dagId: outcome.run.dag_id, runId, state, was: outcome.run.state, actor: actor.by, reason: actor.reason },
    `run ${runId} of ${outcome.run.dag_id} ${describe(actor, `marked ${state}`)}`,
  );
  // Its slot is free: the DAG's next queued run may start.
  await engine.activate(outcome.run.dag_id);
  return { run: runId, dag: outcome.run.dag_id, state, instances: outcome.changed };
}
