import { ConflictError, NotFoundError } from '../../core/errors.ts';
import type { Store } from '../store/db.ts';
import type { Actor } from './actions-mark.ts';
import { clearInRun } from './clear.ts';
import type { EngineContext } from './types.ts';

/*
 * Dead letters: instances that failed their last try. Replaying one clears its instance, with
 * a fresh budget of tries, and its downstream, so the run resumes from there; the letter is
 * resolved `replayed`. A mapped task runs again whole (its expansion is made afresh from its
 * source's list), so every open letter of that task in the run is replayed with it.
 */

export interface DeadLetterFilter {
  dagId?: string;
  taskId?: string;
  /** Open (default), resolved, or both. */
  status?: 'open' | 'resolved' | 'all';
  /** Only letters older than this id: the next page, newest first. */
  before?: number;
  limit?: number;
}

export interface DeadLetter {
  id: number;
  dag_id: string;
  run_id: number;
  task_id: string;
  map_index: number;
  /** The mapped instance's item (a tenant, say), when there is one. */
  map_item: unknown;
  logical_date: Date;
  tries: number;
  error: unknown;
  created_at: Date;
  resolved_at: Date | null;
  resolution: string | null;
  resolved_by: string | null;
}

export const MAX_DEAD_LETTERS = 1_000;

/** Dead letters, newest first. */
export async function listDeadLetters(db: Store, filter: DeadLetterFilter = {}): Promise<DeadLetter[]> {
  let query = db
    .selectFrom('dead_letters as d')
    .innerJoin('dag_runs as r', 'r.id', 'd.run_id')
    .leftJoin('task_instances as ti', 'ti.id', 'd.ti_id')
    .select([
      'd.id',
      'd.dag_id',
      'd.run_id',
      'd.task_id',
      'd.map_index',
      'ti.map_item',
      'r.logical_date',
      'd.tries',
      'd.error',
      'd.created_at',
      'd.resolved_at',
      'd.resolution',
      'd.resolved_by',
    ])
    .orderBy('d.id', 'desc')
    .limit(Math.min(filter.limit ?? MAX_DEAD_LETTERS, MAX_DEAD_LETTERS));
  const status = filter.status ?? 'open';
  if (status === 'open') query = query.where('d.resolved_at', 'is', null);
  if (status === 'resolved') query = query.where('d.resolved_at', 'is not', null);
  if (filter.dagId) query = query.where('d.dag_id', '=', filter.dagId);
  if (filter.taskId) query = query.where('d.task_id', '=', filter.taskId);
  if (filter.before !== undefined) query = query.where('d.id', '<', filter.before);
  const rows = await query.execute();
  return rows.map((r) => ({ ...r, id: Number(r.id), run_id: Number(r.run_id) }));
}

export interface ReplaySelection {
  /** These letters; or every open one of dagId (and taskId). */
  ids?: number[];
  dagId?: string;
  taskId?: string;
}

export interface ReplayResult {
  /** Letters resolved as `replayed`. */
  replayed: number[];
  /** Per run, the tasks cleared. */
  runs: { run: number; cleared: string[] }[];
  /** Runs that could not be replayed now, with why (a task still running, a test run, a DAG not loaded). */
  refused: { run: number; letters: number[]; reason: string }[];
}

async function selectOpen(engine: EngineContext, selection: ReplaySelection): Promise<{ id: number; run_id: number; task_id: string }[]> {
  if (selection.ids) {
    if (!selection.ids.length) throw new NotFoundError('no dead letters named');
    const rows = await engine.db
      .selectFrom('dead_letters')
      .select(['id', 'run_id', 'task_id', 'resolved_at', 'resolution'])
      .where('id', 'in', selection.ids)
      .execute();
    const missing = selection.ids.filter((id) => !rows.some((r) => Number(r.id) === id));
    if (missing.length) throw new NotFoundError(`no dead letter ${missing.join(', ')}`);
    const resolved = rows.filter((r) => r.resolved_at !== null);
    if (resolved.length) throw new ConflictError(resolved.map((r) => `dead letter ${r.id} is already resolved (${r.resolution})`).join('; '));
    return rows.map((r) => ({ id: Number(r.id), run_id: Number(r.run_id), task_id: r.task_id }));
  }
  if (!selection.dagId) throw new NotFoundError('name the dead letters to replay, or a DAG');
  engine.dag(selection.dagId);
  let query = engine.db
    .selectFrom('dead_letters')
    .select(['id', 'run_id', 'task_id'])
    .where('resolved_at', 'is', null)
    .where('dag_id', '=', selection.dagId)
    .orderBy('id');
  if (selection.taskId) {
    if (!engine.dag(selection.dagId).tasks.has(selection.taskId)) throw new NotFoundError(`DAG '${selection.dagId}' has no task '${selection.taskId}'`);
    query = query.where('task_id', '=', selection.taskId);
  }
  const rows = await query.execute();
  return rows.map((r) => ({ id: Number(r.id), run_id: Number(r.run_id), task_id: r.task_id }));
}

/**
 * Replays dead letters: per run, one clear of their tasks and everything downstream, in one
 * transaction. A run that cannot be cleared now is reported, and the others go ahead.
 */
export async function replayDeadLetters(engine: EngineContext, selection: ReplaySelection, actor: Actor): Promise<ReplayResult> {
  const letters = await selectOpen(engine, selection);
  const byRun = new Map<number, typeof letters>();
  for (const l of letters) byRun.set(l.run_id, [...(byRun.get(l.run_id) ?? []), l]);
  const result: ReplayResult = { replayed: [], runs: [], refused: [] };
  for (const [runId, mine] of [...byRun].sort((a, b) => a[0] - b[0])) {
    const ids = mine.map((l) => l.id);
    try {
      const outcome = await engine.transaction(async (trx) => {
        const run = await trx.selectFrom('dag_runs').selectAll().where('id', '=', runId).forUpdate().executeTakeFirstOrThrow();
        const tasks = [...new Set(mine.map((l) => l.task_id))];
        // The clear resolves every open letter of the tasks it resets in this run.
        const cleared = await clearInRun(trx, run, engine.dag(run.dag_id), { tasks, resolution: 'replayed', by: actor.by });
        return { ...cleared, replayed: cleared.resolved, dagId: run.dag_id };
      });
      await engine.dispatch(outcome.dispatch);
      result.replayed.push(...outcome.replayed);
      result.runs.push({ run: runId, cleared: outcome.cleared });
      engine.log.info(
        {
          event: 'dead_letters_replayed',
          dagId: outcome.dagId,
          runId,
          letters: outcome.replayed,
          cleared: outcome.cleared,
          actor: actor.by,
          reason: actor.reason,
        },
        `run ${runId}: ${outcome.replayed.length} dead letter(s) replayed by ${actor.by}`,
      );
    } catch (err) {
      if (!(err instanceof ConflictError || err instanceof NotFoundError)) throw err;
      result.refused.push({ run: runId, letters: ids, reason: err.message });
    }
  }
  result.replayed.sort((a, b) => a - b);
  return result;
}
