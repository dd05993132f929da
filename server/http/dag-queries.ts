import type { Store } from '../store/db.ts';

/** A run as a column of the grid. */
export interface GridRun {
  id: number;
  logical_date: Date;
  run_type: string;
  state: string;
}

/** One task instance as a grid cell (or part of a mapped task's cell). */
export interface GridInstance {
  run_id: number;
  task_id: string;
  map_index: number;
  state: string;
}

/** The item a mapped instance ran for, named for a person (the tenant, not `[3]`). */
export interface GridItem {
  run_id: number;
  map_index: number;
  label: string;
}

export interface GridData {
  /** Oldest first, as the grid reads left to right. */
  runs: GridRun[];
  instances: GridInstance[];
  /** Only for the expanded mapped task: its items' labels. */
  items: GridItem[];
}

const LABEL_KEYS = ['tenant', 'tenant_id', 'tenantId', 'name', 'id', 'key', 'entity'];
const LABEL_MAX = 40;

/** A short name for a mapped item: a scalar as it is, an object by its first naming field, else its JSON. */
export function itemLabel(item: unknown, mapIndex: number): string {
  if (item === null || item === undefined) return `[${mapIndex}]`;
  if (typeof item === 'string' || typeof item === 'number' || typeof item === 'boolean') return String(item).slice(0, LABEL_MAX);
  if (!Array.isArray(item) && typeof item === 'object') {
    for (const key of LABEL_KEYS) {
      const value = (item as Record<string, unknown>)[key];
      if (typeof value === 'string' || typeof value === 'number') return String(value).slice(0, LABEL_MAX);
    }
  }
  const json = JSON.stringify(item);
  return json.length > LABEL_MAX ? `${json.slice(0, LABEL_MAX - 1)}…` : json;
}

/** The latest `limit` runs of a DAG and their task instances; items only for `expand` (they can be large). */
export async function getGridData(db: Store, dagId: string, limit: number, expand?: string): Promise<GridData> {
  const newest = await db
    .selectFrom('dag_runs')
    .select(['id', 'logical_date', 'run_type', 'state'])
    .where('dag_id', '=', dagId)
    // Ids are handed out in creation order: newest first without a sort on timestamps.
    .orderBy('id', 'desc')
    .limit(limit)
    .execute();
  const runs = newest.reverse();
  if (!runs.length) return { runs, instances: [], items: [] };
  const ids = runs.map((r) => r.id);
  const [instances, rawItems] = await Promise.all([
    db.selectFrom('task_instances').select(['run_id', 'task_id', 'map_index', 'state']).where('run_id', 'in', ids).execute(),
    expand
      ? db
          .selectFrom('task_instances')
          .select(['run_id', 'map_index', 'map_item'])
          .where('run_id', 'in', ids)
          .where('task_id', '=', expand)
          .where('map_index', '>=', 0)
          .execute()
      : Promise.resolve([]),
  ]);
  const items = rawItems.map((r) => ({ run_id: r.run_id, map_index: r.map_index, label: itemLabel(r.map_item, r.map_index) }));
  return { runs, instances, items };
}

/** The DAG's pause state as the scheduler reads it (a DAG not yet synced to the store is not paused). */
export async function isPaused(db: Store, dagId: string): Promise<boolean> {
  const row = await db.selectFrom('dags').select('is_paused').where('dag_id', '=', dagId).executeTakeFirst();
  return row?.is_paused ?? false;
}
