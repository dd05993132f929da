import type { Store } from '../store/db.ts';
import type { DagRunRow } from '../store/schema.ts';
import { itemLabel } from './dag-queries.ts';

/** More instances than a page can draw legibly; the rest are counted, not drawn. */
export const GANTT_MAX_INSTANCES = 2_000;

export interface GanttAttempt {
  try_number: number;
  started_at: Date;
  ended_at: Date | null;
  outcome: string;
}

export interface GanttInstance {
  task_id: string;
  map_index: number;
  /** The mapped item named for a person (the tenant), or null for an unmapped task. */
  label: string | null;
  state: string;
  try_number: number;
  /** When the instance was first queued; each later try is queued when the one before it ended. */
  ready_at: Date | null;
  deferred_until: Date | null;
  deferred_reason: string | null;
  attempts: GanttAttempt[];
}

export interface GanttData {
  run: DagRunRow;
  instances: GanttInstance[];
  total: number;
}

/** A run with its instances (DAG order, then map index) and every try each made. */
export async function getGanttData(db: Store, runId: number, taskOrder: (dagId: string) => string[]): Promise<GanttData | undefined> {
  const run = await db.selectFrom('dag_runs').selectAll().where('id', '=', runId).executeTakeFirst();
  if (!run) return undefined;
  const rows = await db
    .selectFrom('task_instances')
    .select(['id', 'task_id', 'map_index', 'map_item', 'state', 'try_number', 'ready_at', 'deferred_until', 'deferred_reason'])
    .where('run_id', '=', runId)
    .execute();
  const order = new Map(taskOrder(run.dag_id).map((t, i) => [t, i]));
  const rank = (task: string) => order.get(task) ?? order.size;
  rows.sort((a, b) => rank(a.task_id) - rank(b.task_id) || a.task_id.localeCompare(b.task_id) || a.map_index - b.map_index);
  const shown = rows.slice(0, GANTT_MAX_INSTANCES);
  const attempts = shown.length
    ? await db
        .selectFrom('attempts')
        .select(['ti_id', 'try_number', 'started_at', 'ended_at', 'outcome'])
        .where(
          'ti_id',
          'in',
          shown.map((r) => r.id),
        )
        .orderBy('try_number')
        .execute()
    : [];
  const byTi = new Map<number, GanttAttempt[]>();
  for (const { ti_id, ...a } of attempts) {
    const list = byTi.get(ti_id);
    if (list) list.push(a);
    else byTi.set(ti_id, [a]);
  }
  const instances = shown.map(({ id, map_item, ...ti }) => ({
    ...ti,
    label: ti.map_index >= 0 ? itemLabel(map_item, ti.map_index) : null,
    attempts: byTi.get(id) ?? [],
  }));
  return { run, instances, total: rows.length };
}
