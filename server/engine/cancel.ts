import { sql, type Kysely } from 'kysely';
import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { RunType, StoreSchema } from '../store/schema.ts';
import type { EngineContext } from './types.ts';

/** Which runs to cancel: given ids, or every unfinished run matching the filters. */
export interface CancelSelection {
  runIds?: number[];
  dagId?: string;
  /** Default: both. */
  state?: 'queued' | 'running';
  runType?: RunType;
  /** Recorded on the run and on each instance it stopped; shown by the CLI, the API and the run page. */
  reason?: string;
}

export interface CancelledRun {
  id: number;
  dagId: string;
  logicalDate: Date;
  runType: RunType;
  /** The state it was cancelled in. */
  was: 'queued' | 'running';
  /** Unfinished instances it ended as `cancelled`. */
  tasks: number;
  /** Of those, the ones that were running: their workers abort them. */
  interrupted: number;
}

const UNFINISHED_TI = ['scheduled', 'queued', 'deferred', 'running', 'up_for_retry'] as const;

/**
 * Cancels runs, as Airflow's "mark failed" but said plainly: the run ends `cancelled` with its
 * reason, each unfinished instance ends `cancelled` (nothing more of the run starts, whatever
 * its trigger rules), and a running try's attempt ends `cancelled`; its worker notices within
 * a second or so and aborts the task's signal with a TaskCancelledError. The try is never
 * retried. The run's maxActiveRuns slot is free at once, so the DAG's next queued run starts.
 * Jobs BullMQ still holds for these instances are taken out where possible; any left (one a
 * worker holds) starts nothing, as the start function refuses a cancelled instance.
 */
export async function cancelRuns(engine: EngineContext, selection: CancelSelection): Promise<CancelledRun[]> {
  const reason = selection.reason?.trim() || 'cancelled';
  const error = JSON.stringify({ name: 'TaskCancelledError', message: `run cancelled: ${reason}` });
  const { runs, jobs } = await engine.transaction(async (trx) => {
    if (selection.runIds) await checkCancellable(trx, selection.runIds);
    // Run rows are locked in id order, as completions lock them, so the two cannot deadlock.
    let query = trx
      .selectFrom('dag_runs')
      .select(['id', 'dag_id', 'logical_date', 'run_type', 'state'])
      .where('state', 'in', selection.state ? [selection.state] : ['queued', 'running']);
    if (selection.runIds) query = query.where('id', 'in', [...selection.runIds, 0]);
    if (selection.dagId) query = query.where('dag_id', '=', selection.dagId);
    if (selection.runType) query = query.where('run_type', '=', selection.runType);
    const locked = await query.orderBy('id').forUpdate().execute();
    if (!locked.length) return { runs: [], jobs: [] };
    const ids = locked.map((r) => r.id);
    await trx.updateTable('dag_runs').set({ state: 'cancelled', ended_at: sql`now()`, cancel_reason: reason }).where('id', 'in', ids).execute();
    const { rows: tis } = await sql<{ id: number; run_id: number; task_id: string; map_index: number; generation: number; was: string }>`
      with old as (
        select id, state from task_instances where run_id = any(${ids}::bigint[]) and state = any(${[...UNFINISHED_TI]}::text[]) for update
      )
      update task_instances ti set state = 'cancelled', ended_at = now(), heartbeat_at = null, error = ${error}::jsonb
      from old where ti.id = old.id
      returning ti.id, ti.run_id, ti.task_id, ti.map_index, ti.generation, old.state as was`.execute(trx);
    const interrupted = tis.filter((t) => t.was === 'running').map((t) => t.id);
    if (interrupted.length) {
      await trx
        .updateTable('attempts')
        .set({ ended_at: sql`now()`, outcome: 'cancelled', error })
        .where('ti_id', 'in', interrupted)
        .where('outcome', '=', 'running')
        .execute();
    }
    const counts = new Map<number, { tasks: number; interrupted: number }>();
    for (const t of tis) {
      const c = counts.get(Number(t.run_id)) ?? { tasks: 0, interrupted: 0 };
      c.tasks++;
      if (t.was === 'running') c.interrupted++;
      counts.set(Number(t.run_id), c);
    }
    const runs = locked.map((r) => ({
      id: Number(r.id),
      dagId: r.dag_id,
      logicalDate: new Date(r.logical_date),
      runType: r.run_type,
      was: r.state as 'queued' | 'running',
      ...(counts.get(Number(r.id)) ?? { tasks: 0, interrupted: 0 }),
    }));
    const jobs = tis
      .filter((t) => t.was !== 'running' && t.was !== 'scheduled')
      .map((t) => ({ runId: Number(t.run_id), taskId: t.task_id, mapIndex: t.map_index, generation: t.generation }));
    return { runs, jobs };
  });
  await engine.dispatcher.remove(jobs);
  for (const r of runs) {
    engine.log.info(
      { event: 'run_cancelled', dagId: r.dagId, runId: r.id, was: r.was, tasks: r.tasks, reason },
      `run ${r.id} of ${r.dagId} cancelled: ${reason}`,
    );
  }
  // Their slots are free: the DAGs' next queued runs may start.
  for (const dagId of new Set(runs.map((r) => r.dagId))) await engine.activate(dagId);
  return runs;
}

/** Runs named by id must exist and not have ended already. */
async function checkCancellable(db: Kysely<StoreSchema>, runIds: readonly number[]): Promise<void> {
  const found = await db
    .selectFrom('dag_runs')
    .select(['id', 'state'])
    .where('id', 'in', [...runIds, 0])
    .execute();
  const missing = runIds.filter((id) => !found.some((r) => Number(r.id) === id));
  if (missing.length) throw new NotFoundError(`no run ${missing.join(', ')}`);
  const ended = found.filter((r) => r.state !== 'queued' && r.state !== 'running');
  if (ended.length) throw new ConflictError(ended.map((r) => `run ${r.id} has already ended (${r.state})`).join('; '));
}
