import { sql } from 'kysely';
import { LIVE_TI_STATES } from '../store/schema.ts';
import type { Dispatchable } from './advance.ts';
import type { EngineContext } from './types.ts';

/**
 * The recovery sweep. The store says which instances should have a job; any that has none
 * (a crash between commit and enqueue, a Redis that lost its data, a job BullMQ gave up on
 * while the store still expects it) gets one. A running instance whose worker still
 * heartbeats is left alone, so a task is never started twice while it runs.
 *
 * Test runs are left to the `dags test` process that runs them, on a queue of its own: that
 * process sweeps its run (`runIds`), and every other sweep passes them by.
 */
export async function sweep(engine: EngineContext, runIds?: readonly number[]): Promise<number> {
  const staleAfterMs = engine.config.HUBFLOW_LOCK_MS * 2;
  let query = engine.db
    .selectFrom('task_instances as ti')
    .innerJoin('dag_runs as r', 'r.id', 'ti.run_id')
    .select([
      'ti.id',
      'ti.run_id',
      'ti.dag_id',
      'ti.task_id',
      'ti.map_index',
      'ti.state',
      'ti.generation',
      'ti.try_number',
      'ti.max_tries',
      'ti.next_try_at',
      'ti.deferred_until',
      sql<boolean>`ti.heartbeat_at > now() - ${staleAfterMs} * interval '1 millisecond'`.as('alive'),
    ])
    .where('r.state', '=', 'running')
    .where('ti.state', 'in', LIVE_TI_STATES);
  query = runIds ? query.where('r.id', 'in', [...runIds, 0]) : query.where('r.run_type', '!=', 'test');
  const rows = await query.orderBy('ti.id').limit(10_000).execute();
  const dispatch: Dispatchable[] = [];
  for (const ti of rows) {
    const ref = { tiId: ti.id, runId: ti.run_id, dagId: ti.dag_id, taskId: ti.task_id, mapIndex: ti.map_index, generation: ti.generation };
    const state = await engine.dispatcher.jobState(ref);
    if (!['unknown', 'completed', 'failed'].includes(state)) continue;
    if (ti.state === 'running' && ti.alive) continue;
    let generation = ti.generation;
    if (state !== 'unknown') {
      // The job id is taken by a finished job; a new generation gets a fresh one.
      const bumped = await engine.db
        .updateTable('task_instances')
        .set({ generation: sql`generation + 1` })
        .where('id', '=', ti.id)
        .where('generation', '=', ti.generation)
        .where('state', 'in', LIVE_TI_STATES)
        .returning('generation')
        .executeTakeFirst();
      if (!bumped) continue;
      generation = bumped.generation;
    }
    const waitUntil = ti.state === 'deferred' ? ti.deferred_until : ti.next_try_at;
    const delayMs = waitUntil ? Math.max(0, new Date(waitUntil).getTime() - Date.now()) : 0;
    dispatch.push({ ...ref, generation, triesLeft: Math.max(1, ti.max_tries - ti.try_number), delayMs });
  }
  if (dispatch.length) {
    engine.log.warn(
      { event: 'recovered', count: dispatch.length, jobs: dispatch.slice(0, 20).map((d) => engine.dispatcher.jobId(d)) },
      'recovery sweep re-enqueued task instances that had no job',
    );
    await engine.dispatch(dispatch);
  }
  return dispatch.length;
}
