import type { JobRef } from '../engine/dispatch.ts';
import type { Runtime } from '../runtime.ts';
import type { Store } from '../store/db.ts';
import { sql, type Selectable } from 'kysely';
import type { AttemptRow, DagRunRow, ReconciliationFieldsTable, ReconciliationsTable, RunState, RunType, TaskInstanceRow } from '../store/schema.ts';
import { itemLabel } from './dag-queries.ts';

export interface DagSummary {
  id: string;
  description: string;
  owner: string | null;
  schedule: { cron: string; timezone: string } | null;
  catchup: boolean;
  maxActiveRuns: number;
  tags: readonly string[];
  file: string | null;
  is_paused: boolean;
  tasks: { id: string; upstream: readonly string[]; trigger: string; map: string | null }[];
}

export interface DagLoadError {
  file: string;
  dagId: string | null;
  field: string;
  /** The whole line, file and field included. */
  message: string;
  /** Only what is wrong with the field. */
  problem: string;
}

export async function listDags(rt: Runtime): Promise<{ dags: DagSummary[]; errors: DagLoadError[] }> {
  const rows = await rt.db.selectFrom('dags').select(['dag_id', 'is_paused']).execute();
  const paused = new Map(rows.map((r) => [r.dag_id, r.is_paused]));
  const dags = [...rt.dags.dags.values()]
    .sort((a, b) => a.id.localeCompare(b.id))
    .map((d) => ({
      id: d.id,
      description: d.description,
      owner: d.owner ?? null,
      schedule: d.schedule ? { cron: d.schedule.cron, timezone: d.schedule.timezone } : null,
      catchup: d.catchup,
      maxActiveRuns: d.maxActiveRuns,
      tags: d.tags,
      file: d.file ?? null,
      is_paused: paused.get(d.id) ?? false,
      tasks: [...d.tasks.values()].map((t) => ({ id: t.id, upstream: t.upstream, trigger: t.trigger, map: t.map ?? null })),
    }));
  const errors = rt.dags.errors.map((e) => ({ file: e.file, dagId: e.dagId ?? null, field: e.field, message: e.message, problem: e.problem }));
  return { dags, errors };
}

export interface RunFilter {
  dag?: string;
  state?: RunState;
  runType?: RunType;
  /** Logical dates from this instant (inclusive) ... */
  from?: Date;
  /** ... to this one (exclusive). */
  to?: Date;
  /** Only runs older than this one (the last id of the previous page). */
  before?: number;
  limit: number;
}

export function listRuns(db: Store, filter: RunFilter): Promise<DagRunRow[]> {
  let query = db.selectFrom('dag_runs').selectAll();
  if (filter.dag) query = query.where('dag_id', '=', filter.dag);
  if (filter.state) query = query.where('state', '=', filter.state);
  if (filter.runType) query = query.where('run_type', '=', filter.runType);
  if (filter.from) query = query.where('logical_date', '>=', filter.from);
  if (filter.to) query = query.where('logical_date', '<', filter.to);
  if (filter.before) query = query.where('id', '<', filter.before);
  // Ids are handed out in creation order, so this is "newest first" without a sort on timestamps.
  return query.orderBy('id', 'desc').limit(filter.limit).execute();
}

export type AttemptView = Pick<AttemptRow, 'try_number' | 'worker' | 'started_at' | 'ended_at' | 'outcome' | 'error'>;

export type TaskInstanceView = Pick<
  TaskInstanceRow,
  | 'id'
  | 'task_id'
  | 'map_index'
  | 'state'
  | 'try_number'
  | 'max_tries'
  | 'started_at'
  | 'ended_at'
  | 'error'
  | 'next_try_at'
  | 'deferred_until'
  | 'deferred_reason'
> & {
  /** The BullMQ job of the instance's current generation (it may already have been removed). */
  job_id: string;
  /** A mapped instance's item named for a person (the tenant), null for an unmapped task. */
  label: string | null;
  attempts: AttemptView[];
};

/** What a run's reconcile tasks found, per tenant and entity, with the fields that differ. */
export type ReconciliationView = Omit<Selectable<ReconciliationsTable>, 'run_id'> & {
  fields: Omit<Selectable<ReconciliationFieldsTable>, 'reconciliation_id'>[];
};

/** Records a run refused, counted by task, entity, field and reason (the records are in the store). */
export interface RejectSummary {
  task_id: string;
  entity: string;
  field: string;
  /** The rule the record broke (null on rejects stored before rules were recorded). */
  rule: string | null;
  reason: string;
  records: number;
}

/** How many of a run's task instances are in each state, per task: the whole run at a glance, however large. */
export interface TaskSummary {
  task_id: string;
  state: string;
  instances: number;
}

export interface RunDetail {
  run: DagRunRow;
  task_summary: TaskSummary[];
  /** Every task instance of the run, counted; `task_instances` holds the page asked for. */
  task_instances_total: number;
  offset: number;
  limit: number;
  /** The offset of the next page, null on the last. */
  next_offset: number | null;
  task_instances: TaskInstanceView[];
  reconciliations: ReconciliationView[];
  rejects: RejectSummary[];
}

/** Which page of a run's task instances: in the order its DAG lists its tasks, then by map index. */
export interface InstancePage {
  offset: number;
  limit: number;
  taskOrder: (dagId: string) => readonly string[];
}

const REJECT_GROUPS = 100;

async function runProofs(db: Store, runId: number): Promise<Pick<RunDetail, 'reconciliations' | 'rejects'>> {
  const [recs, rejects] = await Promise.all([
    db.selectFrom('reconciliations').selectAll().where('run_id', '=', runId).orderBy('tenant_id').orderBy('entity').execute(),
    db
      .selectFrom('rejects')
      .select(['task_id', 'entity', 'field', 'rule', 'reason', (eb) => eb.fn.countAll<number>().as('records')])
      .where('run_id', '=', runId)
      .groupBy(['task_id', 'entity', 'field', 'rule', 'reason'])
      .orderBy('records', 'desc')
      .limit(REJECT_GROUPS)
      .execute(),
  ]);
  const fields = recs.length
    ? await db
        .selectFrom('reconciliation_fields')
        .selectAll()
        .where(sql<boolean>`reconciliation_id = any(${recs.map((r) => r.id)}::bigint[])`)
        .orderBy('field')
        .execute()
    : [];
  return {
    reconciliations: recs.map(({ run_id: _, ...r }) => ({
      ...r,
      fields: fields.filter((f) => f.reconciliation_id === r.id).map(({ reconciliation_id: __, ...f }) => f),
    })),
    rejects: rejects.map((r) => ({ ...r, records: Number(r.records) })),
  };
}

async function instancePage(db: Store, run: DagRunRow, page: InstancePage) {
  return (
    db
      .selectFrom('task_instances')
      .select([
        'id',
        'task_id',
        'map_index',
        'state',
        'try_number',
        'max_tries',
        'started_at',
        'ended_at',
        'error',
        'next_try_at',
        'deferred_until',
        'deferred_reason',
        'generation',
        'map_item',
      ])
      .where('run_id', '=', run.id)
      // The DAG's order travels as one array parameter, however many tasks it has.
      .orderBy(sql`array_position(${[...page.taskOrder(run.dag_id)]}::text[], task_id)`)
      .orderBy('task_id')
      .orderBy('map_index')
      .offset(page.offset)
      .limit(page.limit)
      .execute()
  );
}

export async function taskSummary(db: Store, runId: number): Promise<TaskSummary[]> {
  const rows = await db
    .selectFrom('task_instances')
    .select(['task_id', 'state', (eb) => eb.fn.countAll<string>().as('instances')])
    .where('run_id', '=', runId)
    .groupBy(['task_id', 'state'])
    .orderBy('task_id')
    .orderBy('state')
    .execute();
  return rows.map((r) => ({ ...r, instances: Number(r.instances) }));
}

/**
 * A run with one page of its task instances. Nothing here binds a parameter per instance:
 * PostgreSQL takes at most 65,535, and a mapped task alone may have 100,000 instances.
 */
export async function getRunDetail(db: Store, runId: number, jobId: (ref: JobRef) => string, page: InstancePage): Promise<RunDetail | undefined> {
  const run = await db.selectFrom('dag_runs').selectAll().where('id', '=', runId).executeTakeFirst();
  if (!run) return undefined;
  const [tis, summary, proofs] = await Promise.all([instancePage(db, run, page), taskSummary(db, runId), runProofs(db, runId)]);
  const attempts = tis.length
    ? await db
        .selectFrom('attempts')
        .select(['ti_id', 'try_number', 'worker', 'started_at', 'ended_at', 'outcome', 'error'])
        .where(sql<boolean>`ti_id = any(${tis.map((t) => t.id)}::bigint[])`)
        .orderBy('ti_id')
        .orderBy('try_number')
        .execute()
    : [];
  const byTi = new Map<number, AttemptView[]>();
  for (const { ti_id, ...attempt } of attempts) {
    const list = byTi.get(ti_id) ?? [];
    list.push(attempt);
    byTi.set(ti_id, list);
  }
  const total = summary.reduce((n, s) => n + s.instances, 0);
  return {
    run,
    task_summary: summary,
    task_instances_total: total,
    offset: page.offset,
    limit: page.limit,
    next_offset: page.offset + tis.length < total ? page.offset + tis.length : null,
    ...proofs,
    task_instances: tis.map(({ generation, map_item, ...ti }) => ({
      ...ti,
      label: ti.map_index >= 0 ? itemLabel(map_item, ti.map_index) : null,
      job_id: jobId({ runId, taskId: ti.task_id, mapIndex: ti.map_index, generation }),
      attempts: byTi.get(ti.id) ?? [],
    })),
  };
}
