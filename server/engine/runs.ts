import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { ConflictError, InvalidInputError } from '../../core/errors.ts';
import type { DagRunRow, RunType } from '../store/schema.ts';
import { advanceRun, applyAdvance, type Dispatchable } from './advance.ts';
import type { Dag } from './dag.ts';
import { TASK_QUEUE } from './dispatch.ts';
import { MAX_CONF_DEPTH, toStorableJson } from './storable.ts';
import type { EngineContext, NewRun, Trx } from './types.ts';
import { resourcesOf } from './windows.ts';

/*
 * The run lifecycle: a run is created with its task instances (scheduled), by the scheduler,
 * by hand, as a backfill or as a test run; it starts (running, its root tasks queued) when its
 * DAG has room for it. Cancellation is in cancel.ts; the task lifecycle in tasks.ts.
 */

/** Creates a run and its task instances, queued; null when the DAG already has a run at that logical date. */
export async function createRun(engine: EngineContext, dag: Dag, run: NewRun, trx?: Trx): Promise<DagRunRow | null> {
  const conf = toStorableJson(run.conf ?? {}, 'conf', MAX_CONF_DEPTH);
  if ('problem' in conf) throw new InvalidInputError(`run of DAG '${dag.id}': ${conf.problem}`);
  const create = async (t: Trx) => {
    const row = await t
      .insertInto('dag_runs')
      .values({
        dag_id: dag.id,
        logical_date: run.logicalDate,
        interval_start: run.intervalStart,
        interval_end: run.intervalEnd,
        run_type: run.runType,
        state: 'queued',
        conf: conf.json,
        due_at: run.dueAt ?? sql<Date>`now()`,
      })
      .onConflict((oc) => oc.columns(['dag_id', 'logical_date']).doNothing())
      .returningAll()
      .executeTakeFirst();
    if (!row) return null;
    await t
      .insertInto('task_instances')
      .values(
        [...dag.tasks.values()].map((task) => ({
          run_id: row.id,
          dag_id: dag.id,
          task_id: task.id,
          state: 'scheduled' as const,
          max_tries: task.retry.attempts,
          pools: resourcesOf(engine.dags, task)
            .filter((r) => r.slots !== undefined)
            .map((r) => r.id),
          pool_slots: task.slots,
        })),
      )
      .execute();
    return row;
  };
  return trx ? create(trx) : engine.transaction(create);
}

/** A manual run (Airflow's trigger): logical date now unless given; conf is handed to every task. */
export async function triggerRun(
  engine: EngineContext,
  dagId: string,
  options: { logicalDate?: Date; conf?: Record<string, unknown>; runType?: RunType } = {},
): Promise<DagRunRow> {
  const dag = engine.dag(dagId);
  const logicalDate = options.logicalDate ?? new Date();
  const interval = manualInterval(dag, logicalDate);
  const row = await createRun(engine, dag, {
    logicalDate,
    intervalStart: interval.start,
    intervalEnd: interval.end,
    runType: options.runType ?? 'manual',
    conf: options.conf,
  });
  if (!row) throw new ConflictError(`DAG '${dagId}' already has a run at ${logicalDate.toISOString()}`);
  await activate(engine, dagId);
  return row;
}

/**
 * Creates one backfill run per interval whose logical date lies in [from, to], oldest first;
 * dates that already have a run are left as they are. The runs start in logical-date order
 * within maxActiveRuns, and only while the DAG is not paused: a paused DAG refuses a backfill.
 */
export async function backfill(engine: EngineContext, dagId: string, from: Date, to: Date): Promise<DagRunRow[]> {
  const dag = engine.dag(dagId);
  if (!dag.timetable) throw new ConflictError(`DAG '${dagId}' has no schedule, so it has no intervals to backfill`);
  if (to < from) throw new ConflictError(`backfill range ends (${to.toISOString()}) before it starts (${from.toISOString()})`);
  const state = await engine.db.selectFrom('dags').select('is_paused').where('dag_id', '=', dagId).executeTakeFirst();
  if (state?.is_paused) throw new ConflictError(`DAG '${dagId}' is paused, so its backfill runs would wait: unpause it first (hubflow dags unpause ${dagId})`);
  // Only intervals that are over: a run covers data that is complete.
  const starts = intervalsToBackfill(dag, from, to);
  const runs = await engine.transaction(async (trx) => {
    const created: DagRunRow[] = [];
    for (const start of starts) {
      const end = dag.timetable!.next(start)!;
      const run = await createRun(engine, dag, { logicalDate: start, intervalStart: start, intervalEnd: end, runType: 'backfill' }, trx);
      if (run) created.push(run);
    }
    return created;
  });
  await activate(engine, dagId);
  return runs;
}

/** At most this many runs per backfill: a range over a frequent schedule asks for it in parts. */
export const MAX_BACKFILL_RUNS = 10_000;

/**
 * The starts of the intervals in [from, to] that are over, oldest first. Walked one tick at a
 * time and never past the cap: a year of a seconds schedule is 31 million ticks.
 */
function intervalsToBackfill(dag: Dag, from: Date, to: Date): Date[] {
  const timetable = dag.timetable!;
  const now = Date.now();
  const starts: Date[] = [];
  for (let s = timetable.next(new Date(from.getTime() - 1)); s && s <= to; s = timetable.next(s)) {
    if ((timetable.next(s)?.getTime() ?? Infinity) > now) break;
    if (starts.length === MAX_BACKFILL_RUNS) {
      throw new InvalidInputError(
        `backfill of DAG '${dag.id}' from ${from.toISOString()} to ${to.toISOString()} covers more than ${MAX_BACKFILL_RUNS} intervals: backfill it in parts`,
      );
    }
    starts.push(s);
  }
  return starts;
}

/**
 * A run for `hubflow dags test`: like a manual run, but it starts at once whatever else is
 * running, its jobs go to a queue of its own that only the testing process's worker takes
 * (`queue`, returned), and a finished earlier test run at the same date is replaced rather
 * than refused. Created running, so no scheduler ever starts it or dispatches it elsewhere.
 */
export async function testRun(
  engine: EngineContext,
  dagId: string,
  logicalDate: Date,
  conf: Record<string, unknown> = {},
): Promise<{ run: DagRunRow; queue: string }> {
  const dag = engine.dag(dagId);
  const existing = await engine.db.selectFrom('dag_runs').selectAll().where('dag_id', '=', dagId).where('logical_date', '=', logicalDate).executeTakeFirst();
  if (existing) {
    if (existing.run_type !== 'test' || existing.state === 'running' || existing.state === 'queued') {
      const cancel = existing.state === 'running' || existing.state === 'queued' ? ` or cancel it (hubflow runs cancel ${existing.id})` : '';
      throw new ConflictError(
        `DAG '${dagId}' already has a ${existing.run_type} run (${existing.id}, ${existing.state}) at ${logicalDate.toISOString()}; test another date${cancel}`,
      );
    }
    await engine.db.deleteFrom('dag_runs').where('id', '=', existing.id).execute();
  }
  const interval = manualInterval(dag, logicalDate);
  const { run, dispatch } = await engine.transaction(async (trx) => {
    const created = await createRun(engine, dag, { logicalDate, intervalStart: interval.start, intervalEnd: interval.end, runType: 'test', conf }, trx);
    if (!created) throw new ConflictError(`DAG '${dagId}' already has a run at ${logicalDate.toISOString()}`);
    const [started] = await startRuns(trx, dag, [created]);
    return started!;
  });
  const queue = `${TASK_QUEUE}-test-r${run.id}-${randomUUID().slice(0, 8)}`;
  engine.dispatcher.route(run.id, queue);
  await engine.dispatch(dispatch);
  engine.log.info({ event: 'run_started', dagId, runId: run.id, logicalDate: run.logical_date, queue }, 'test run started');
  return { run, queue };
}

/**
 * Starts queued runs of a DAG, oldest logical date first, up to its maxActiveRuns. A paused
 * DAG starts only the runs someone asked for by hand (`dags trigger`, the API); its scheduled
 * and backfill runs wait until it is unpaused. Test runs never pass through here (testRun).
 */
export async function activate(engine: EngineContext, dagId: string): Promise<DagRunRow[]> {
  const dag = engine.dags.dags.get(dagId);
  if (!dag) return [];
  const { started, dispatch } = await engine.transaction(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext(${`hubflow-runs:${dagId}`}))`.execute(trx);
    const paused = await trx.selectFrom('dags').select('is_paused').where('dag_id', '=', dagId).executeTakeFirst();
    const active = await trx
      .selectFrom('dag_runs')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('dag_id', '=', dagId)
      .where('state', '=', 'running')
      .where('run_type', '!=', 'test')
      .executeTakeFirstOrThrow();
    const free = dag.maxActiveRuns - Number(active.n);
    if (free <= 0) return { started: [], dispatch: [] };
    const queued = await trx
      .selectFrom('dag_runs')
      .selectAll()
      .where('dag_id', '=', dagId)
      .where('state', '=', 'queued')
      .where('run_type', 'in', paused?.is_paused ? ['manual'] : ['scheduled', 'manual', 'backfill'])
      // Not before it is due: start jitter and start windows push a scheduled run's due time.
      .where('due_at', '<=', sql<Date>`now()`)
      .orderBy('logical_date')
      .limit(free)
      .forUpdate()
      .execute();
    const results = await startRuns(trx, dag, queued);
    return { started: results.map((r) => r.run), dispatch: results.flatMap((r) => r.dispatch) };
  });
  await engine.dispatch(dispatch);
  for (const run of started) engine.log.info({ event: 'run_started', dagId, runId: run.id, logicalDate: run.logical_date }, 'run started');
  return started;
}

/** Moves runs to running and queues their root tasks (and those whose rule is `always`), inside the caller's transaction. */
async function startRuns(trx: Trx, dag: Dag, runs: readonly DagRunRow[]): Promise<{ run: DagRunRow; dispatch: Dispatchable[] }[]> {
  const roots = [...dag.tasks.values()].filter((t) => t.upstream.length === 0 || t.trigger === 'always').map((t) => t.id);
  const started: { run: DagRunRow; dispatch: Dispatchable[] }[] = [];
  for (const queued of runs) {
    const run = await trx
      .updateTable('dag_runs')
      .set({ state: 'running', started_at: sql`now()` })
      .where('id', '=', queued.id)
      .returningAll()
      .executeTakeFirstOrThrow();
    const result = await applyAdvance(trx, await advanceRun(trx, run, dag, roots));
    started.push({ run, dispatch: result.dispatch });
  }
  return started;
}

/**
 * The data interval of a run asked for by hand. At a schedule tick it is the interval the
 * scheduled run would cover, [tick, next tick). Anywhere else it is the latest complete
 * interval (Airflow's rule), so triggering a nightly DAG during the day processes the last full
 * day. A DAG without a schedule covers the instant itself.
 */
export function manualInterval(dag: Dag, at: Date): { start: Date; end: Date } {
  const timetable = dag.timetable;
  if (!timetable) return { start: at, end: at };
  if (timetable.next(new Date(at.getTime() - 1))?.getTime() === at.getTime()) return { start: at, end: timetable.next(at) ?? at };
  const end = timetable.prev(at);
  const start = end && timetable.prev(end);
  return end && start ? { start, end } : { start: at, end: at };
}
