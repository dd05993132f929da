import { sql } from 'kysely';
import { describeError } from '../../core/errors.ts';
import { HeldClient, poolOf } from '../../core/pg.ts';
import { Batcher } from './batcher.ts';
import { completeBatch } from './complete.ts';
import { withRetry } from './retrying.ts';
import type { Completion, EngineContext, StartedTask } from './types.ts';

/** A try lost with its worker, as a real Error (hubflow_start_tasks writes the same words when a new try finds it open). */
function workerLost(): Error {
  const err = new Error('the worker running this attempt stopped before it finished');
  err.name = 'WorkerLost';
  // Noticed here, not raised here: a stack of this code would mislead.
  err.stack = `${err.name}: ${err.message}`;
  return err;
}

/**
 * The task lifecycle: an instance starts (running, a new attempt), beats while it runs, and
 * ends as a retry, a completion, or stale. Starts and completions are grouped: each batcher
 * flushes one batch at a time, on a connection of its own.
 */
export class TaskLifecycle {
  readonly #completions: Batcher<Completion, undefined>;
  readonly #starts: Batcher<{ tiId: number; generation: number }, StartedTask | null>;
  readonly #completionClient: HeldClient;
  readonly #startClient: HeldClient;

  constructor(private readonly engine: EngineContext) {
    this.#completions = new Batcher((items) => completeBatch(engine, this.#completionClient, items));
    this.#starts = new Batcher((items) => this.#startBatch(items));
    this.#completionClient = new HeldClient(poolOf(engine.db));
    this.#startClient = new HeldClient(poolOf(engine.db));
  }

  /** Gives back the connections it holds. */
  async close(): Promise<void> {
    await Promise.all([this.#completionClient.release(), this.#startClient.release()]);
  }

  /** Marks a task instance running and opens its attempt; null when it must not run (finished, cleared, out of tries). */
  async startTask(tiId: number, generation: number, pooled = false): Promise<StartedTask | null | 'no-slot'> {
    const start = async (): Promise<StartedTask | null | 'no-slot'> => {
      if (!pooled) return this.#starts.push({ tiId, generation });
      const { rows } = await sql<StartedTask>`select * from hubflow_start_pooled(${tiId}, ${generation}, ${this.engine.workerName})`.execute(this.engine.db);
      if (rows[0]) return rows[0];
      const ti = await this.engine.db
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
      const ti = await this.engine.db.selectFrom('task_instances').select(['state', 'generation']).where('id', '=', tiId).executeTakeFirst();
      if (ti && ti.generation !== generation) return null;
      if (ti && ti.state !== 'scheduled') return start();
      await new Promise((r) => setTimeout(r, waitMs));
    }
    return null;
  }

  async #startBatch(items: { tiId: number; generation: number }[]): Promise<(StartedTask | null)[]> {
    const { rows } = await withRetry(() =>
      this.#startClient.use((client) =>
        // Named: prepared once per connection, not parsed again for every batch.
        client.query<StartedTask>({
          name: 'hubflow-start-tasks',
          text: 'select * from hubflow_start_tasks($1::bigint[], $2::int[], $3)',
          values: [items.map((i) => i.tiId), items.map((i) => i.generation), this.engine.workerName],
        }),
      ),
    );
    const byId = new Map(rows.map((r) => [Number(r.id), r]));
    // Two jobs of one instance in a batch (one made for an older generation): the statement
    // checked the instance against the first one's generation, so only the first may run it.
    return items.map((i) => {
      const row = byId.get(i.tiId) ?? null;
      byId.delete(i.tiId);
      return row;
    });
  }

  /**
   * A job arrived for an instance that cannot start. If its last try was lost with its
   * worker, fail it (tries exhausted) so the run can move on; anything else is a stale job.
   */
  async settleUnstartable(tiId: number, generation: number): Promise<void> {
    const ti = await this.engine.db
      .selectFrom('task_instances')
      .select(['run_id', 'dag_id', 'task_id', 'state', 'try_number', 'max_tries', 'generation'])
      .where('id', '=', tiId)
      .executeTakeFirst();
    if (!ti || ti.generation !== generation || ti.state !== 'running' || ti.try_number < ti.max_tries) return;
    const attempt = await this.engine.db.selectFrom('attempts').select('id').where('ti_id', '=', tiId).where('ended_at', 'is', null).executeTakeFirst();
    await this.completeTask({
      tiId,
      runId: ti.run_id,
      dagId: ti.dag_id,
      taskId: ti.task_id,
      attemptId: attempt?.id ?? 0,
      outcome: 'failed',
      error: workerLost(),
    });
  }

  /** Records a finished attempt; resolves once committed and its downstream work is enqueued. */
  completeTask(c: Completion): Promise<void> {
    return this.#completions.push(c);
  }

  /** A failed try that will be retried: the instance waits out its backoff as up_for_retry. */
  async recordRetry(tiId: number, attemptId: number, error: unknown, delayMs: number): Promise<void> {
    const described = JSON.stringify(describeError(error));
    await this.engine.transaction(async (trx) => {
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
    // Rows a completion holds are skipped, not waited for: they are being finished, and a beat
    // that waited on them could close a deadlock with the completion's own row locks (a wide
    // fan's group commit takes hundreds), costing one of the two transactions.
    await this.engine.db
      .updateTable('task_instances')
      .set({ heartbeat_at: sql`now()` })
      .where('id', 'in', (eb) =>
        eb.selectFrom('task_instances').select('id').where('id', 'in', tiIds).where('state', '=', 'running').orderBy('id').forUpdate().skipLocked(),
      )
      .execute();
  }

  /** Which of these instances a run's cancellation has ended, with its reason. */
  async cancelledAmong(tiIds: number[]): Promise<{ id: number; reason: string }[]> {
    if (!tiIds.length) return [];
    const rows = await this.engine.db.selectFrom('task_instances').select(['id', 'error']).where('id', 'in', tiIds).where('state', '=', 'cancelled').execute();
    return rows.map((r) => ({ id: Number(r.id), reason: (r.error as { message?: string } | null)?.message ?? 'run cancelled' }));
  }
}
