import { randomUUID } from 'node:crypto';
import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { QueryResult } from 'pg';
import type { Config } from '../../core/config.ts';
import { ConflictError, NotFoundError, describeError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { HeldClient, kyselyOnClient, poolOf } from '../../core/pg.ts';
import { isRetriedTransaction } from '../../core/sqlstate.ts';
import type { Store } from '../store/db.ts';
import type { DagRunRow, RunState, RunType, StoreSchema } from '../store/schema.ts';
import { advanceRun, applyAdvance, buildSnapshot, type Dispatchable, type RunRef, type SnapshotRow } from './advance.ts';
import { Batcher } from './batcher.ts';
import { cancelRuns, type CancelSelection, type CancelledRun } from './cancel.ts';
import { clearTasks } from './clear.ts';
import type { Dag } from './dag.ts';
import { TASK_QUEUE, type Dispatcher } from './dispatch.ts';
import type { Escalate } from './escalation.ts';
import type { DagRegistry } from './loader.ts';
import { sweep } from './recovery.ts';
import { deferralFor, resourcesOf, taskOf } from './windows.ts';

type Trx = Transaction<StoreSchema>;
type RawWrite = RawBuilder<unknown>;

export interface NewRun {
  logicalDate: Date;
  intervalStart: Date;
  intervalEnd: Date;
  runType: RunType;
  /** When it may start; absent: now, by the store's clock (a run asked for by hand). */
  dueAt?: Date;
  conf?: Record<string, unknown>;
}

type CompletionRow = SnapshotRow & {
  kind: 'run' | 'count' | 'done';
  run_id: number;
  dag_id: string;
  run_state: RunState;
  failed: number;
  ti_id: number;
  map_index: number;
  try_number: number;
};

export interface Completion {
  tiId: number;
  runId: number;
  dagId: string;
  taskId: string;
  attemptId: number;
  outcome: 'success' | 'failed' | 'skipped';
  /** JSON text of the task's result. */
  result?: string;
  /** Why it failed, or (skipped) the task's reason. */
  error?: unknown;
}

/** A task instance a worker has just started, with what its context needs. */
export interface StartedTask {
  id: number;
  run_id: number;
  dag_id: string;
  task_id: string;
  map_index: number;
  try_number: number;
  max_tries: number;
  map_item: unknown;
  attempt_id: number;
  logical_date: Date;
  interval_start: Date;
  interval_end: Date;
  conf: Record<string, unknown>;
}

// Also written by hubflow_start_tasks when a new try finds the previous one open.
const LOST = JSON.stringify({ name: 'WorkerLost', message: 'the worker running this attempt stopped before it finished' });

/**
 * The engine's state transitions. Every decision is one PostgreSQL transaction; BullMQ is told
 * afterwards, and what it misses (a crash between commit and enqueue, a flushed Redis) the
 * recovery sweep puts back.
 */
export class Engine {
  readonly #completions: Batcher<Completion, undefined>;
  readonly #starts: Batcher<{ tiId: number; generation: number }, StartedTask | null>;
  // Each batcher flushes one batch at a time, so each keeps one connection of its own.
  readonly #completionClient: HeldClient;
  readonly #startClient: HeldClient;

  constructor(
    readonly db: Store,
    readonly dags: DagRegistry,
    readonly dispatcher: Dispatcher,
    readonly log: Logger,
    readonly config: Config,
    readonly escalate: Escalate,
    readonly workerName = `${process.pid}`,
  ) {
    this.#completions = new Batcher((items) => this.#completeBatch(items));
    this.#starts = new Batcher((items) => this.#startBatch(items));
    this.#completionClient = new HeldClient(poolOf(db));
    this.#startClient = new HeldClient(poolOf(db));
  }

  /** Gives back the connections the engine holds; the store's pool closes after. */
  async close(): Promise<void> {
    await Promise.all([this.#completionClient.release(), this.#startClient.release()]);
  }

  dag(dagId: string): Dag {
    const dag = this.dags.dags.get(dagId);
    if (!dag) throw new NotFoundError(`no DAG '${dagId}' is loaded`);
    return dag;
  }

  /**
   * Runs `fn` in a transaction, again on a deadlock or serialization failure, or when the
   * server ended the connection it ran on (a restart or failover): each of these is reported
   * instead of a commit, so the transaction did not happen.
   */
  transaction<T>(fn: (trx: Trx) => Promise<T>): Promise<T> {
    return this.#withRetry(() => this.db.transaction().execute(fn));
  }

  async #withRetry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (attempt >= 5 || !isRetriedTransaction(err)) throw err;
        await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
      }
    }
  }

  /** Creates a run and its task instances, queued; null when the DAG already has a run at that logical date. */
  async createRun(dag: Dag, run: NewRun, trx?: Trx): Promise<DagRunRow | null> {
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
          conf: JSON.stringify(run.conf ?? {}),
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
            pools: resourcesOf(this.dags, task)
              .filter((r) => r.slots !== undefined)
              .map((r) => r.id),
            pool_slots: task.slots,
          })),
        )
        .execute();
      return row;
    };
    return trx ? create(trx) : this.transaction(create);
  }

  /** A manual run (Airflow's trigger): logical date now unless given; conf is handed to every task. */
  async triggerRun(dagId: string, options: { logicalDate?: Date; conf?: Record<string, unknown>; runType?: RunType } = {}): Promise<DagRunRow> {
    const dag = this.dag(dagId);
    const logicalDate = options.logicalDate ?? new Date();
    const interval = manualInterval(dag, logicalDate);
    const row = await this.createRun(dag, {
      logicalDate,
      intervalStart: interval.start,
      intervalEnd: interval.end,
      runType: options.runType ?? 'manual',
      conf: options.conf,
    });
    if (!row) throw new ConflictError(`DAG '${dagId}' already has a run at ${logicalDate.toISOString()}`);
    await this.activate(dagId);
    return row;
  }

  /**
   * Creates one backfill run per interval whose logical date lies in [from, to], oldest first;
   * dates that already have a run are left as they are. The runs start in logical-date order
   * within maxActiveRuns, and only while the DAG is not paused: a paused DAG refuses a backfill.
   */
  async backfill(dagId: string, from: Date, to: Date): Promise<DagRunRow[]> {
    const dag = this.dag(dagId);
    if (!dag.timetable) throw new ConflictError(`DAG '${dagId}' has no schedule, so it has no intervals to backfill`);
    if (to < from) throw new ConflictError(`backfill range ends (${to.toISOString()}) before it starts (${from.toISOString()})`);
    const state = await this.db.selectFrom('dags').select('is_paused').where('dag_id', '=', dagId).executeTakeFirst();
    if (state?.is_paused)
      throw new ConflictError(`DAG '${dagId}' is paused, so its backfill runs would wait: unpause it first (hubflow dags unpause ${dagId})`);
    // Only intervals that are over: a run covers data that is complete.
    const now = Date.now();
    const starts = dag.timetable.between(from, new Date(to.getTime() + 1)).filter((s) => dag.timetable!.next(s)!.getTime() <= now);
    const runs = await this.transaction(async (trx) => {
      const created: DagRunRow[] = [];
      for (const start of starts) {
        const end = dag.timetable!.next(start)!;
        const run = await this.createRun(dag, { logicalDate: start, intervalStart: start, intervalEnd: end, runType: 'backfill' }, trx);
        if (run) created.push(run);
      }
      return created;
    });
    await this.activate(dagId);
    return runs;
  }

  /**
   * A run for `hubflow dags test`: like a manual run, but it starts at once whatever else is
   * running, its jobs go to a queue of its own that only the testing process's worker takes
   * (`queue`, returned), and a finished earlier test run at the same date is replaced rather
   * than refused. Created running, so no scheduler ever starts it or dispatches it elsewhere.
   */
  async testRun(dagId: string, logicalDate: Date, conf: Record<string, unknown> = {}): Promise<{ run: DagRunRow; queue: string }> {
    const dag = this.dag(dagId);
    const existing = await this.db.selectFrom('dag_runs').selectAll().where('dag_id', '=', dagId).where('logical_date', '=', logicalDate).executeTakeFirst();
    if (existing) {
      if (existing.run_type !== 'test' || existing.state === 'running' || existing.state === 'queued') {
        const cancel = existing.state === 'running' || existing.state === 'queued' ? ` or cancel it (hubflow runs cancel ${existing.id})` : '';
        throw new ConflictError(
          `DAG '${dagId}' already has a ${existing.run_type} run (${existing.id}, ${existing.state}) at ${logicalDate.toISOString()}; test another date${cancel}`,
        );
      }
      await this.db.deleteFrom('dag_runs').where('id', '=', existing.id).execute();
    }
    const interval = manualInterval(dag, logicalDate);
    const { run, dispatch } = await this.transaction(async (trx) => {
      const created = await this.createRun(dag, { logicalDate, intervalStart: interval.start, intervalEnd: interval.end, runType: 'test', conf }, trx);
      if (!created) throw new ConflictError(`DAG '${dagId}' already has a run at ${logicalDate.toISOString()}`);
      const [started] = await this.#startRuns(trx, dag, [created]);
      return started!;
    });
    const queue = `${TASK_QUEUE}-test-r${run.id}-${randomUUID().slice(0, 8)}`;
    this.dispatcher.route(run.id, queue);
    await this.dispatch(dispatch);
    this.log.info({ event: 'run_started', dagId, runId: run.id, logicalDate: run.logical_date, queue }, 'test run started');
    return { run, queue };
  }

  /**
   * Starts queued runs of a DAG, oldest logical date first, up to its maxActiveRuns. A paused
   * DAG starts only the runs someone asked for by hand (`dags trigger`, the API); its scheduled
   * and backfill runs wait until it is unpaused. Test runs never pass through here (testRun).
   */
  async activate(dagId: string): Promise<DagRunRow[]> {
    const dag = this.dags.dags.get(dagId);
    if (!dag) return [];
    const { started, dispatch } = await this.transaction(async (trx) => {
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
      const results = await this.#startRuns(trx, dag, queued);
      return { started: results.map((r) => r.run), dispatch: results.flatMap((r) => r.dispatch) };
    });
    await this.dispatch(dispatch);
    for (const run of started) this.log.info({ event: 'run_started', dagId, runId: run.id, logicalDate: run.logical_date }, 'run started');
    return started;
  }

  /** Moves runs to running and queues their root tasks, inside the caller's transaction. */
  async #startRuns(trx: Trx, dag: Dag, runs: readonly DagRunRow[]): Promise<{ run: DagRunRow; dispatch: Dispatchable[] }[]> {
    const roots = [...dag.tasks.values()].filter((t) => t.upstream.length === 0).map((t) => t.id);
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
   * Hands queued instances to BullMQ. An instance whose resources are in blackout goes as a
   * delayed job that becomes due when the window ends (plus jitter), and is marked `deferred`
   * with the reason, in the store and in the job.
   */
  async dispatch(items: readonly Dispatchable[]): Promise<void> {
    if (!items.length) return;
    const now = new Date();
    const deferred: { id: number; until: Date; reason: string }[] = [];
    const jobs = items.map((d) => {
      const found = taskOf(this.dags, d.dagId, d.taskId);
      const deferral = found?.task.uses.length ? deferralFor(resourcesOf(this.dags, found.task), now) : null;
      if (!deferral) return d;
      deferred.push({ id: d.tiId, until: deferral.until, reason: deferral.reason });
      return { ...d, delayMs: Math.max(d.delayMs ?? 0, deferral.until.getTime() - now.getTime()), deferral };
    });
    await Promise.all([this.dispatcher.enqueue(jobs), this.#markDeferred(deferred)]);
    for (const d of deferred) this.log.info({ event: 'task_deferred', tiId: d.id, until: d.until, reason: d.reason }, `task deferred: ${d.reason}`);
  }

  async #markDeferred(items: { id: number; until: Date; reason: string }[]): Promise<void> {
    if (!items.length) return;
    await sql`
      update task_instances ti set state = 'deferred', deferred_until = v.until, deferred_reason = v.reason
      from unnest(${items.map((i) => i.id)}::bigint[], ${items.map((i) => i.until.toISOString())}::timestamptz[], ${items.map((i) => i.reason)}::text[])
        as v(id, until, reason)
      where ti.id = v.id and ti.state in ('queued', 'deferred', 'up_for_retry')`.execute(this.db);
  }

  /** A worker found a resource in blackout when the job came due: the instance waits again. */
  markDeferred(tiId: number, until: Date, reason: string): Promise<void> {
    return this.#markDeferred([{ id: tiId, until, reason }]);
  }

  /** Marks a task instance running and opens its attempt; null when it must not run (finished, cleared, out of tries). */
  async startTask(tiId: number, generation: number, pooled = false): Promise<StartedTask | null | 'no-slot'> {
    const start = async (): Promise<StartedTask | null | 'no-slot'> => {
      if (!pooled) return this.#starts.push({ tiId, generation });
      const { rows } = await sql<StartedTask>`select * from hubflow_start_pooled(${tiId}, ${generation}, ${this.workerName})`.execute(this.db);
      if (rows[0]) return rows[0];
      const ti = await this.db
        .selectFrom('task_instances')
        .select(['state', 'generation', 'try_number', 'max_tries'])
        .where('id', '=', tiId)
        .executeTakeFirst();
      const startable =
        ti && ti.generation === generation && ['queued', 'deferred', 'up_for_retry', 'running'].includes(ti.state) && ti.try_number < ti.max_tries;
      return startable ? 'no-slot' : null;
    };
    const started = await start();
    if (started) return started;
    // Jobs are enqueued while the transaction that queued them commits; a fast worker can get
    // here first and find the instance still `scheduled`, or (a mapped task's new instances)
    // not there at all yet. Give the commit a moment.
    for (const waitMs of [0, 1, 2, 5, 10, 25, 50, 100, 250, 500]) {
      const ti = await this.db.selectFrom('task_instances').select(['state', 'generation']).where('id', '=', tiId).executeTakeFirst();
      if (ti && ti.generation !== generation) return null;
      if (ti && ti.state !== 'scheduled') return start();
      await new Promise((r) => setTimeout(r, waitMs));
    }
    return null;
  }

  async #startBatch(items: { tiId: number; generation: number }[]): Promise<(StartedTask | null)[]> {
    const { rows } = await this.#withRetry(() =>
      this.#startClient.use((client) =>
        // Named: prepared once per connection, not parsed again for every batch.
        client.query<StartedTask>({
          name: 'hubflow-start-tasks',
          text: 'select * from hubflow_start_tasks($1::bigint[], $2::int[], $3)',
          values: [items.map((i) => i.tiId), items.map((i) => i.generation), this.workerName],
        }),
      ),
    );
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    return items.map((i) => byId.get(i.tiId) ?? null);
  }

  /**
   * A job arrived for an instance that cannot start. If its last try was lost with its
   * worker, fail it (tries exhausted) so the run can move on; anything else is a stale job.
   */
  async settleUnstartable(tiId: number, generation: number): Promise<void> {
    const ti = await this.db
      .selectFrom('task_instances')
      .select(['run_id', 'dag_id', 'task_id', 'state', 'try_number', 'max_tries', 'generation'])
      .where('id', '=', tiId)
      .executeTakeFirst();
    if (!ti || ti.generation !== generation || ti.state !== 'running' || ti.try_number < ti.max_tries) return;
    const attempt = await this.db.selectFrom('attempts').select('id').where('ti_id', '=', tiId).where('ended_at', 'is', null).executeTakeFirst();
    await this.completeTask({
      tiId,
      runId: ti.run_id,
      dagId: ti.dag_id,
      taskId: ti.task_id,
      attemptId: attempt?.id ?? 0,
      outcome: 'failed',
      error: JSON.parse(LOST) as unknown,
    });
  }

  /** Records a finished attempt; resolves once committed and its downstream work is enqueued. */
  completeTask(c: Completion): Promise<void> {
    return this.#completions.push(c);
  }

  /**
   * Records a batch of finished tries in one transaction of three round trips: BEGIN; one call
   * for run locks, outcomes, attempts, dead letters and the runs' state counts; the decisions'
   * writes with the COMMIT. Completions are the engine's hottest path, and on a
   * busy worker each round trip costs more in event-loop queueing than in PostgreSQL.
   */
  async #completeBatch(items: Completion[]): Promise<undefined[]> {
    const ids = items.map((i) => i.tiId);
    const errors = items.map((i) => {
      if (i.outcome === 'success') return null;
      // A skip's reason is its message; its stack says nothing an operator needs.
      const { name, message, stack } = describeError(i.error);
      return JSON.stringify(i.outcome === 'skipped' ? { name, message } : { name, message, stack });
    });
    const runIds = [...new Set(items.map((i) => i.runId))].sort((a, b) => a - b);
    // The tasks the decisions read: the finished tasks' downstream, and the upstream of those.
    const watched = new Map<number, Set<string>>();
    for (const i of items) {
      const dag = this.dags.dags.get(i.dagId);
      const tasks = watched.get(i.runId) ?? new Set<string>();
      watched.set(i.runId, tasks);
      for (const down of dag?.tasks.get(i.taskId)?.downstream ?? []) {
        tasks.add(down);
        for (const up of dag!.tasks.get(down)!.upstream) tasks.add(up);
      }
    }
    const watch = [...watched].flatMap(([runId, tasks]) => [...tasks].map((task) => [String(runId), task] as const));
    const outcome = await this.#withRetry(() =>
      this.#completionClient.use(async (client) => {
        try {
          // BEGIN and the call in one simple-protocol round trip, so values travel as escaped
          // literals. The call locks the runs, records outcomes, attempts and dead letters, and
          // returns the runs' totals and the watched tasks' state counts (see hubflow_complete_tasks).
          const lit = (v: string | null) => (v === null ? 'null' : client.escapeLiteral(v));
          const array = (values: (string | null)[], type: string) => `array[${values.map(lit).join(',')}]::${type}[]`;
          const call = `begin; select * from hubflow_complete_tasks(${array(runIds.map(String), 'bigint')}, ${array(ids.map(String), 'bigint')},
          ${array(
            items.map((i) => i.outcome),
            'text',
          )}, ${array(
            items.map((i) => i.result ?? null),
            'jsonb',
          )}, ${array(errors, 'jsonb')},
          ${array(
            items.map((i) => String(i.attemptId)),
            'bigint',
          )}, ${array(
            watch.map((w) => w[0]),
            'bigint',
          )}, ${array(
            watch.map((w) => w[1]),
            'text',
          )})`;
          const results = (await client.query(call)) as unknown as QueryResult<CompletionRow>[];
          const rows = results[1]!.rows;
          const conn = kyselyOnClient<StoreSchema>(client);

          const runs = rows.filter((r) => r.kind === 'run');
          const counts = rows.filter((r) => r.kind === 'count');
          const finished = rows.filter((r) => r.kind === 'done');
          const writes: RawWrite[] = [];
          const dispatch: Dispatchable[] = [];
          const escalations: { run: RunRef; taskId: string; mapIndex: number; tries: number; error: unknown }[] = [];
          const finishedRuns: { run: RunRef; state: string }[] = [];
          for (const runId of runIds) {
            const totals = runs.find((c) => c.run_id === runId);
            if (!totals) continue;
            const run: RunRef = { id: runId, dag_id: totals.dag_id, state: totals.run_state };
            const dag = this.dags.dags.get(run.dag_id);
            if (!dag) {
              this.log.warn({ dagId: run.dag_id, runId }, 'run of a DAG that is no longer loaded: not advanced');
              continue;
            }
            const candidates = finished.filter((t) => t.run_id === runId).flatMap((t) => dag.tasks.get(t.task_id)?.downstream ?? []);
            const snapshot = buildSnapshot(
              counts.filter((c) => c.run_id === runId),
              watched.get(runId) ?? [],
              { live: Number(totals.n), failed: Number(totals.failed) },
            );
            const result = await advanceRun(conn, run, dag, candidates, snapshot);
            if (result.write) writes.push(result.write);
            dispatch.push(...result.dispatch);
            for (const f of result.failed) escalations.push({ run, taskId: f.taskId, mapIndex: 0, tries: 0, error: f.error });
            if (result.finished) finishedRuns.push({ run, state: result.finished.state });
          }
          const commit = sql.join([...writes, sql.raw('commit')], sql.raw('; ')).compile(conn);
          if (commit.parameters.length) throw new Error('advance writes must be literals to share a simple-protocol query');
          // The jobs go to BullMQ while the COMMIT travels: a worker that is quicker than the
          // commit finds its instance still `scheduled`, and startTask waits for the commit.
          // Should the commit fail, those jobs start nothing, and the sweep replaces them.
          await Promise.all([client.query(commit.sql), this.dispatch(dispatch)]);
          for (const t of finished) {
            if (t.state !== 'failed') continue;
            const item = items[ids.indexOf(t.ti_id)]!;
            escalations.push({
              run: { id: t.run_id, dag_id: t.dag_id, state: 'running' },
              taskId: t.task_id,
              mapIndex: t.map_index,
              tries: t.try_number,
              error: item.error,
            });
          }
          return { dispatch, escalations, finishedRuns };
        } catch (err) {
          await client.query('rollback').catch(() => undefined);
          throw err;
        }
      }),
    );

    for (const { run, state } of outcome.finishedRuns) {
      this.log.info({ event: 'run_finished', dagId: run.dag_id, runId: run.id, state }, `run ${run.id} of ${run.dag_id}: ${state}`);
      // The next queued run of this DAG may start now that a slot is free.
      void this.activate(run.dag_id).catch((err: unknown) => this.log.error({ err }, 'activating queued runs failed'));
    }
    for (const e of outcome.escalations) {
      void this.escalate({
        kind: 'dead_letter',
        dagId: e.run.dag_id,
        runId: e.run.id,
        taskId: e.taskId,
        mapIndex: e.mapIndex,
        tries: e.tries,
        owner: this.dags.dags.get(e.run.dag_id)?.owner,
        message: describeError(e.error).message,
      });
    }
    return items.map(() => undefined);
  }

  /** A failed try that will be retried: the instance waits out its backoff as up_for_retry. */
  async recordRetry(tiId: number, attemptId: number, error: unknown, delayMs: number): Promise<void> {
    const described = JSON.stringify(describeError(error));
    await this.transaction(async (trx) => {
      await trx
        .updateTable('task_instances')
        .set({ state: 'up_for_retry', error: described, next_try_at: sql`now() + ${delayMs} * interval '1 millisecond'` })
        .where('id', '=', tiId)
        .where('state', '=', 'running')
        .execute();
      await trx
        .updateTable('attempts')
        .set({ ended_at: sql`now()`, outcome: 'retry', error: described })
        .where('id', '=', attemptId)
        // A cancellation may have closed it already.
        .where('outcome', '=', 'running')
        .execute();
    });
  }

  async heartbeat(tiIds: number[]): Promise<void> {
    if (!tiIds.length) return;
    await this.db.updateTable('task_instances').set({ heartbeat_at: sql`now()` }).where('id', 'in', tiIds).where('state', '=', 'running').execute();
  }

  /** Which of these instances a run's cancellation has ended, with its reason. */
  async cancelledAmong(tiIds: number[]): Promise<{ id: number; reason: string }[]> {
    if (!tiIds.length) return [];
    const rows = await this.db.selectFrom('task_instances').select(['id', 'error']).where('id', 'in', tiIds).where('state', '=', 'cancelled').execute();
    return rows.map((r) => ({ id: Number(r.id), reason: (r.error as { message?: string } | null)?.message ?? 'run cancelled' }));
  }

  /** Cancels runs; see cancel.ts. */
  cancelRuns(selection: CancelSelection): Promise<CancelledRun[]> {
    return cancelRuns(this, selection);
  }

  /** Airflow's clear; see clear.ts. */
  clear(runId: number, options: { tasks?: string[] } = {}): Promise<{ cleared: string[] }> {
    return clearTasks(this, runId, options);
  }

  /** The recovery sweep; see recovery.ts. */
  sweep(runIds?: readonly number[]): Promise<number> {
    return sweep(this, runIds);
  }
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
