import { sql } from 'kysely';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import { LIVE_TI_STATES, type DagRunRow } from '../store/schema.ts';
import { advanceRun, applyAdvance, type Dispatchable } from './advance.ts';
import type { Dag } from './dag.ts';
import type { EngineContext, Trx } from './types.ts';

export interface ClearOptions {
  /** The tasks to clear; default: the failed ones. */
  tasks?: string[];
  /** Everything downstream of them too (default: yes, as Airflow's clear). */
  downstream?: boolean;
  /** Of the tasks selected, only those with a failed, upstream_failed or cancelled instance. */
  failedOnly?: boolean;
  /** How the cleared instances' open dead letters are resolved. */
  resolution?: 'cleared' | 'replayed';
  /** Who cleared, recorded on the dead letters it resolves. */
  by?: string;
}

/** States a failed-only clear resets: what failed, and what did not run because of it. */
const FAILED = new Set(['failed', 'upstream_failed', 'cancelled']);

/**
 * Airflow's clear: resets the given tasks (default: the failed ones), the cancelled ones, and
 * everything downstream of them, so the run resumes from there. Their tries start afresh; their
 * attempts stay on record.
 */
export async function clearTasks(engine: EngineContext, runId: number, options: ClearOptions = {}): Promise<{ cleared: string[] }> {
  const { cleared, dispatch } = await engine.transaction(async (trx) => {
    const run = await trx.selectFrom('dag_runs').selectAll().where('id', '=', runId).forUpdate().executeTakeFirst();
    if (!run) throw new NotFoundError(`no run ${runId}`);
    return clearInRun(trx, run, engine.dag(run.dag_id), options);
  });
  await engine.dispatch(dispatch);
  return { cleared };
}

/** clearTasks inside the caller's transaction, which holds the run's row lock. */
export async function clearInRun(
  trx: Trx,
  run: DagRunRow,
  dag: Dag,
  options: ClearOptions,
): Promise<{ cleared: string[]; dispatch: Dispatchable[]; resolved: number[] }> {
  const runId = run.id;
  const tis = await trx.selectFrom('task_instances').selectAll().where('run_id', '=', runId).execute();
  for (const t of options.tasks ?? []) if (!dag.tasks.has(t)) throw new NotFoundError(`DAG '${dag.id}' has no task '${t}'`);
  if (run.run_type === 'test') {
    throw new ConflictError(
      `run ${runId} is a test run, which only its own \`dags test\` process runs: test it again with hubflow dags test ${run.dag_id} --date ${new Date(run.logical_date).toISOString()}`,
    );
  }
  const named = options.tasks ?? tis.filter((t) => t.state === 'failed' || t.state === 'upstream_failed').map((t) => t.task_id);
  // What a cancellation stopped always runs again with them: a running run never holds a
  // cancelled instance, which would otherwise stand for a failure its downstream never sees.
  const roots = [...new Set([...named, ...tis.filter((t) => t.state === 'cancelled').map((t) => t.task_id)])];
  const selected = new Set<string>();
  const visit = (id: string) => {
    if (selected.has(id)) return;
    selected.add(id);
    if (options.downstream !== false) dag.tasks.get(id)!.downstream.forEach(visit);
  };
  roots.forEach(visit);
  if (options.failedOnly) {
    const failed = new Set(tis.filter((t) => FAILED.has(t.state)).map((t) => t.task_id));
    for (const id of selected) if (!failed.has(id)) selected.delete(id);
  }
  if (!selected.size) return { cleared: [], dispatch: [], resolved: [] };
  const busy = tis.find((t) => selected.has(t.task_id) && (LIVE_TI_STATES as readonly string[]).includes(t.state));
  if (busy) throw new ConflictError(`task '${busy.task_id}' of run ${runId} is ${busy.state}; clear it once it has finished`);

  const resolved = await resetTasks(trx, runId, dag, selected, { resolution: options.resolution ?? 'cleared', by: options.by });
  const reopened = await trx
    .updateTable('dag_runs')
    .set({ state: 'running', ended_at: null, started_at: sql`coalesce(started_at, now())` })
    .where('id', '=', runId)
    .returningAll()
    .executeTakeFirstOrThrow();
  const result = await applyAdvance(trx, await advanceRun(trx, reopened, dag, selected));
  return { cleared: [...selected], dispatch: result.dispatch, resolved };
}

/**
 * Puts the tasks' instances back to `scheduled` with a fresh budget of tries, and resolves
 * their open dead letters. The caller advances the run afterwards.
 */
export async function resetTasks(
  trx: Trx,
  runId: number,
  dag: Dag,
  taskIds: Iterable<string>,
  resolve: { resolution: string; by?: string },
): Promise<number[]> {
  const ids = [...taskIds];
  for (const id of ids) {
    const task = dag.tasks.get(id)!;
    if (task.map) {
      // Collapse the expansion back to one placeholder: it expands again from its source's
      // list, produced again when the source is cleared too, or the same one otherwise.
      await trx.deleteFrom('task_instances').where('run_id', '=', runId).where('task_id', '=', id).where('map_index', '>', 0).execute();
      await trx.updateTable('task_instances').set({ map_index: -1, map_item: null }).where('run_id', '=', runId).where('task_id', '=', id).execute();
    }
    await trx
      .updateTable('task_instances')
      .set({
        state: 'scheduled',
        generation: sql`generation + 1`,
        max_tries: sql`try_number + ${task.retry.attempts}`,
        result: null,
        error: null,
        ready_at: null,
        started_at: null,
        ended_at: null,
        next_try_at: null,
        heartbeat_at: null,
      })
      .where('run_id', '=', runId)
      .where('task_id', '=', id)
      .execute();
  }
  if (!ids.length) return [];
  const resolved = await trx
    .updateTable('dead_letters')
    .set({ resolved_at: sql`now()`, resolution: resolve.resolution, resolved_by: resolve.by ?? null })
    .where('run_id', '=', runId)
    .where('task_id', 'in', ids)
    .where('resolved_at', 'is', null)
    .returning('id')
    .execute();
  return resolved.map((r) => Number(r.id));
}
