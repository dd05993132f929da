import type { Kysely } from 'kysely';
import type { StoreSchema } from './schema.ts';

/**
 * A task's result in a run, as its downstream sees it: a mapped task's results as one list in
 * map-index order (its placeholder, map index -1, left out), any other task's own result. The
 * one query behind `ctx.upstream()` and the expansion of a mapped task over its source.
 */
export async function upstreamResult(db: Kysely<StoreSchema>, runId: number, taskId: string, mapped: boolean): Promise<unknown> {
  const rows = await db
    .selectFrom('task_instances')
    .select(['map_index', 'result'])
    .where('run_id', '=', runId)
    .where('task_id', '=', taskId)
    .orderBy('map_index')
    .execute();
  return mapped ? rows.filter((r) => r.map_index >= 0).map((r) => r.result) : rows[0]?.result;
}
