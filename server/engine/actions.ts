import { sql } from 'kysely';
import type { DagRunRow } from '../store/schema.ts';
import type { Actor } from './actions-mark.ts';
import { cancelRuns, type CancelledRun, type CancelSelection } from './cancel.ts';
import { clearTasks, type ClearOptions } from './clear.ts';
import { triggerRun } from './runs.ts';
import type { EngineContext } from './types.ts';

/*
 * The operator's actions, one implementation behind the CLI, the API and the page buttons:
 * trigger, clear, mark (actions-mark.ts), cancel, pause and unpause, replay dead letters
 * (actions-dead-letters.ts). Each names who acted, which the log records with what was done.
 */

export { markRun, markTask, type Actor, type MarkedRun, type MarkedTask, type MarkState } from './actions-mark.ts';
export { listDeadLetters, replayDeadLetters, type DeadLetter, type DeadLetterFilter, type ReplayResult, type ReplaySelection } from './actions-dead-letters.ts';
export type { ClearOptions } from './clear.ts';

function logAction(engine: EngineContext, action: string, actor: Actor, fields: Record<string, unknown>, message: string): void {
  engine.log.info({ event: 'operator_action', action, actor: actor.by, reason: actor.reason, ...fields }, `${message} by ${actor.by}`);
}

/** A manual run, with the conf handed to every task as ctx.conf. */
export async function trigger(
  engine: EngineContext,
  dagId: string,
  options: { logicalDate?: Date; conf?: Record<string, unknown> },
  actor: Actor,
): Promise<DagRunRow> {
  const run = await triggerRun(engine, dagId, options);
  logAction(engine, 'trigger', actor, { dagId, runId: run.id, conf: Object.keys(options.conf ?? {}) }, `run ${run.id} of ${dagId} triggered`);
  return run;
}

/** Airflow's clear (see clear.ts): the tasks, their downstream unless told not to, or only the failed ones. */
export async function clear(engine: EngineContext, runId: number, options: ClearOptions, actor: Actor): Promise<{ cleared: string[] }> {
  const result = await clearTasks(engine, runId, { ...options, by: actor.by });
  logAction(engine, 'clear', actor, { runId, cleared: result.cleared, ...options }, `run ${runId}: cleared ${result.cleared.join(', ') || 'nothing'}`);
  return result;
}

/** Cancels runs (see cancel.ts); without a reason, the one recorded names who cancelled. */
export async function cancel(engine: EngineContext, selection: Omit<CancelSelection, 'reason'>, actor: Actor): Promise<CancelledRun[]> {
  const reason = actor.reason ?? `cancelled by ${actor.by}`;
  const runs = await cancelRuns(engine, { ...selection, reason });
  logAction(engine, 'cancel', actor, { runIds: runs.map((r) => r.id) }, `cancelled ${runs.length} run(s)`);
  return runs;
}

/**
 * Pauses or unpauses a DAG: a paused DAG gets no scheduled runs and starts only manual ones.
 * Unpausing starts the queued runs that waited for it, within maxActiveRuns.
 */
export async function setPaused(
  engine: EngineContext,
  dagId: string,
  paused: boolean,
  actor: Actor,
): Promise<{ dag: string; paused: boolean; changed: boolean }> {
  const dag = engine.dag(dagId);
  const before = await engine.db.selectFrom('dags').select('is_paused').where('dag_id', '=', dagId).executeTakeFirst();
  await engine.db
    .insertInto('dags')
    .values({ dag_id: dagId, is_paused: paused, file: dag.file ?? null })
    .onConflict((oc) => oc.column('dag_id').doUpdateSet({ is_paused: paused, updated_at: sql`now()` }))
    .execute();
  const changed = (before?.is_paused ?? false) !== paused;
  if (changed) logAction(engine, paused ? 'pause' : 'unpause', actor, { dagId }, `${dagId} ${paused ? 'paused' : 'unpaused'}`);
  if (!paused) await engine.activate(dagId);
  return { dag: dagId, paused, changed };
}
