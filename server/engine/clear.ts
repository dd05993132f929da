import { sql } from 'kysely';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import { LIVE_TI_STATES } from '../store/schema.ts';
import { advanceRun, applyAdvance } from './advance.ts';
import type { EngineContext } from './types.ts';

/**
 * Airflow's clear: resets the given tasks (default: the failed ones), the cancelled ones, and
 * everything downstream of them, so the run resumes from there. Their tries start afresh; their
 * attempts stay on record.
 */
export async function clearTasks(engine: EngineContext, runId: number, options: { tasks?: string[] } = {}): Promise<{ cleared: string[] }> {
  const { cleared, dispatch } = await engine.transaction(async (trx) => {
    const run = await trx.selectFrom('dag_runs').selectAll().where('id', '=', runId).forUpdate().executeTakeFirst();
    if (!run) throw new NotFoundError(`no run ${runId}`);
    const dag = engine.dag(run.dag_id);
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
      dag.tasks.get(id)!.downstream.forEach(visit);
    };
    roots.forEach(visit);
    if (!selected.size) return { cleared: [], dispatch: [] };
    const busy = tis.find((t) => selected.has(t.task_id) && (LIVE_TI_STATES as readonly string[]).includes(t.state));
    if (busy) throw new ConflictError(`task '${busy.task_id}' of run ${runId} is ${busy.state}; clear it once it has finished`);

    for (const id of selected) {
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
    await trx
      .updateTable('dead_letters')
      .set({ resolved_at: sql`now()`, resolution: 'cleared' })
      .where('run_id', '=', runId)
      .where('task_id', 'in', [...selected])
      .where('resolved_at', 'is', null)
      .execute();
    const reopened = await trx
      .updateTable('dag_runs')
      .set({ state: 'running', ended_at: null, started_at: sql`coalesce(started_at, now())` })
      .where('id', '=', runId)
      .returningAll()
      .executeTakeFirstOrThrow();
    const result = await applyAdvance(trx, await advanceRun(trx, reopened, dag, selected));
    return { cleared: [...selected], dispatch: result.dispatch };
  });
  await engine.dispatch(dispatch);
  return { cleared };
}
