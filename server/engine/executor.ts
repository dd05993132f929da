import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { PermanentError, SkipTaskError, TaskCancelledError, describeError, isRetryable, isSkip } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { isUnreachable } from '../connections/outage.ts';
import { upstreamResult } from '../store/results.ts';
import type { TaskContext, TaskRef } from './dag.ts';
import { TASK_QUEUE, type TaskJobData } from './dispatch.ts';
import { badJob, checkAgainst, checkId, describeTask, hintedTask, instanceRow, readJob, sameResources, type Found, type JobOrder } from './job-check.ts';
import type { Engine, StartedTask } from './engine.ts';
import { taskRecords } from './records.ts';
import type { ResourceHandles } from './resource-handles.ts';
import type { Resource } from './resources.ts';
import { cancelAtBlackout, runAbortable } from './abortable.ts';
import { followedIds } from './branch.ts';
import { backoffDelay, type RetryPolicy } from './retry.ts';
import { MAX_RESULT_DEPTH, toStorableJson } from './storable.ts';
import { startTryLog } from './task-logs.ts';
import { deferralFor, delayPastBlackouts, resourcesOf, taskOf } from './windows.ts';

/** Results travel through the store to downstream tasks; bulk data belongs in staging. */
export const MAX_RESULT_BYTES = 1_000_000;

/** The error BullMQ sees for a try that will be retried; carries the delay the store recorded. */
class RetryScheduled extends Error {
  override name = 'RetryScheduled';
  constructor(
    message: string,
    readonly retryDelayMs: number,
  ) {
    super(message);
  }
}

export interface ExecutorOptions {
  connection: ConnectionOptions;
  prefix: string;
  concurrency: number;
  lockMs: number;
  /** The declared resources' handles, opened on first use and shared by the process. */
  resources: ResourceHandles;
  /** The queue to take jobs from: the shared one unless a `dags test` process gives its own. */
  queue?: string;
  /** How often a job for a task this worker has not loaded is handed back (5-10 s apart) before it fails. */
  handBackLimit?: number;
}

/** About ten minutes of hand-backs: long enough for a rolling deploy to reach every worker. */
const HAND_BACK_LIMIT = 80;

/** What a worker closed with `abandon` aborts its tasks with: they are left as a killed worker leaves them. */
class Abandoned extends Error {
  override name = 'Abandoned';
}

/** Successes a worker may hold waiting for their commit before its slots wait too (see #process). */
const MAX_UNCOMMITTED = 1_000;

/** How often a worker looks whether a run it is running a task of was cancelled. */
const CANCEL_CHECK_MS = 1_000;

/**
 * A worker: takes task jobs from BullMQ, runs the task function, and records every attempt in
 * the store. The store decides whether a try is retried; BullMQ only waits out the delay
 * (through its custom backoff strategy) and redelivers.
 */
export class Executor {
  readonly worker: Worker<TaskJobData>;
  readonly #running = new Map<number, AbortController>();
  readonly #committing = new Set<Promise<void>>();
  readonly #stopping = new AbortController();
  readonly #heartbeat: NodeJS.Timeout;
  readonly #cancelCheck: NodeJS.Timeout;
  readonly #resources: ResourceHandles;
  readonly #handBackLimit: number;

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    options: ExecutorOptions,
  ) {
    this.#resources = options.resources;
    this.#handBackLimit = options.handBackLimit ?? HAND_BACK_LIMIT;
    this.worker = new Worker<TaskJobData>(options.queue ?? TASK_QUEUE, (job, token) => this.#process(job, token), {
      connection: options.connection,
      prefix: options.prefix,
      concurrency: options.concurrency,
      lockDuration: options.lockMs,
      stalledInterval: options.lockMs,
      // A stalled job (its worker died) comes back as a new try; the store's try budget, not
      // BullMQ's stall counter, decides when to give up.
      maxStalledCount: 1_000,
      settings: {
        backoffStrategy: (_attempts, _type, err) => (err as Partial<RetryScheduled> | undefined)?.retryDelayMs ?? 0,
      },
    });
    this.worker.on('error', (err) => this.log.error({ err }, 'worker connection error'));
    this.#heartbeat = setInterval(
      () => {
        this.engine.heartbeat([...this.#running.keys()]).catch((err: unknown) => this.log.warn({ err }, 'heartbeat failed'));
      },
      Math.max(250, options.lockMs / 3),
    );
    this.#heartbeat.unref();
    this.#cancelCheck = setInterval(() => {
      this.#abortCancelled().catch((err: unknown) => this.log.warn({ err }, 'looking for cancelled tasks failed'));
    }, CANCEL_CHECK_MS);
    this.#cancelCheck.unref();
  }

  /** Aborts the tasks whose run was cancelled: their signal fires with a TaskCancelledError. */
  async #abortCancelled(): Promise<void> {
    for (const { id, reason } of await this.engine.cancelledAmong([...this.#running.keys()])) {
      const controller = this.#running.get(id);
      if (controller && !controller.signal.aborted) controller.abort(new TaskCancelledError(reason));
    }
  }

  async #process(job: Job<TaskJobData>, token?: string): Promise<string> {
    const order = readJob(job);
    checkId(job, order, (ref) => this.engine.dispatcher.jobId(ref));
    const { tiId, generation } = order;
    const planned = hintedTask(this.engine.dags, order) ?? (await this.#fromStore(job, order, token));
    const resources = resourcesOf(this.engine.dags, planned.task);
    if (resources.length) {
      // Checked again when the job comes due: a blackout may have begun while it waited.
      const deferral = deferralFor(resources, new Date());
      if (deferral) {
        await this.engine.markDeferred(tiId, deferral.until, deferral.reason);
        await job.updateData({ ...job.data, deferral: { until: deferral.until.toISOString(), reason: deferral.reason } });
        await job.moveToDelayed(deferral.until.getTime(), token);
        throw new DelayedError();
      }
    }
    const ti = await this.engine.startTask(
      tiId,
      generation,
      resources.some((r) => r.slots !== undefined),
    );
    if (ti === 'no-slot') {
      // Every slot of a pool it needs is taken: look again shortly, spread out.
      await job.moveToDelayed(Date.now() + 200 + Math.floor(Math.random() * 600), token);
      throw new DelayedError();
    }
    if (!ti) {
      const row = checkAgainst(job, order, await instanceRow(this.engine.db, tiId));
      await this.engine.settleUnstartable(tiId, generation);
      return `not started: the store no longer expects this job (the instance is ${row.state})`;
    }
    const found = await this.#claimed(job, order, ti, planned);
    const { task } = found;
    const log = this.log.child({ dagId: ti.dag_id, runId: ti.run_id, taskId: ti.task_id, mapIndex: ti.map_index, try: ti.try_number });
    const controller = new AbortController();
    this.#running.set(tiId, controller);
    const cancelTimer = cancelAtBlackout(resources, controller, log);
    // What the try logs and prints, stored before its outcome is, so a finished try's log is complete.
    const tryLog = startTryLog(this.engine.db, ti, log);
    try {
      const result = await runAbortable(controller, task.timeoutMs, () =>
        tryLog.run(() => this.#context(ti, controller.signal, tryLog.logger).then((ctx) => task.run(ctx))),
      );
      const json = storableResult(ti, task.branch ? followedIds(found.dag, task, result) : result);
      await tryLog.end();
      // The BullMQ job is released without waiting for the commit: the slot takes the next job
      // while the success is group-committed with others. Until it is committed the instance
      // keeps its heartbeat; were this process to die first, the store still says `running`
      // and the recovery sweep runs the task again, so a success is never lost, only repeated.
      const committed = this.#recordSuccess(
        () =>
          this.engine.completeTask({
            tiId,
            runId: ti.run_id,
            dagId: ti.dag_id,
            taskId: ti.task_id,
            attemptId: ti.attempt_id,
            outcome: 'success',
            result: json,
          }),
        log,
      );
      this.#committing.add(committed);
      void committed
        .catch((err: unknown) => log.error({ err }, 'recording the success failed; the recovery sweep will run the task again'))
        .finally(() => {
          this.#committing.delete(committed);
          this.#running.delete(tiId);
        });
      // Backpressure: while a commit is slow (the completion that expands a wide map enqueues
      // every one of its jobs first), slots would otherwise keep finishing tasks whose
      // successes, contexts and loggers wait in memory, tens of thousands of them. Past the
      // bound a slot waits for its own commit, so memory stays flat in the width of a fan.
      if (this.#committing.size > MAX_UNCOMMITTED) await committed.catch(() => undefined);
      return 'success';
    } catch (err) {
      this.#running.delete(tiId);
      await tryLog.end({ error: err });
      if (err instanceof Abandoned) {
        // Nothing recorded: the try stays running in the store, and once its heartbeat lapses
        // the recovery sweep hands it to another worker, as after a crash.
        log.warn({ event: 'task_abandoned' }, 'worker stopped before the task finished; left for the recovery sweep');
        throw new UnrecoverableError(err.message);
      }
      if (err === controller.signal.reason && err instanceof TaskCancelledError) {
        // The cancellation has recorded the instance and its attempt: never retried.
        log.warn({ event: 'task_cancelled', reason: err.message }, `task stopped: ${err.message}`);
        throw new UnrecoverableError(err.message);
      }
      if (isSkip(err)) return await this.#skipped(ti, err, log);
      return await this.#failed(ti, err, log, task.retry, resources);
    } finally {
      clearTimeout(cancelTimer);
    }
  }

  /** The task of a job whose own ids name none loaded here: the one its instance's row names. */
  async #fromStore(job: Job<TaskJobData>, order: JobOrder, token?: string): Promise<Found> {
    let row = await instanceRow(this.engine.db, order.tiId);
    // A mapped task's new instances may not be committed yet when their jobs arrive (tasks.ts).
    for (const waitMs of [10, 50, 250, 700]) {
      if (row) break;
      await sleep(waitMs);
      row = await instanceRow(this.engine.db, order.tiId);
    }
    const checked = checkAgainst(job, order, row);
    const found = taskOf(this.engine.dags, checked.dag_id, checked.task_id);
    if (found) return found;
    const what = describeTask(checked.dag_id, checked.task_id);
    if (order.handedBack < this.#handBackLimit) {
      // A worker with another version of the DAG folder (a rolling deploy): leave the task to
      // a worker that knows it, without spending one of its tries; but not forever.
      this.log.warn({ dagId: checked.dag_id, taskId: checked.task_id, tiId: order.tiId }, `${what} is not loaded in this worker; handing it back`);
      await job.updateData(Object.assign({}, job.data, { handedBack: order.handedBack + 1 }));
      await job.moveToDelayed(Date.now() + 5_000 + Math.floor(Math.random() * 5_000), token);
      throw new DelayedError();
    }
    // The instance stays queued: the recovery sweep gives it a new job, for a worker that knows it.
    throw badJob(job, `${what} is not loaded in any worker that took this job (handed back ${order.handedBack} times): deploy the DAG folder that declares it`);
  }

  /**
   * The task the claimed row names, whatever the job said: a job naming one task's instance and
   * another task runs the instance's own task. When that task waits on other resources than the
   * ones checked for the job's, the try is given back (retried, or failed if it was the last)
   * rather than run past a blackout or a pool.
   */
  async #claimed(job: Job<TaskJobData>, order: JobOrder, ti: StartedTask, planned: Found): Promise<Found> {
    const sameTask = ti.dag_id === planned.dag.id && ti.task_id === planned.task.id;
    if (sameTask && ti.run_id === order.runId && ti.map_index === order.mapIndex) return planned;
    const claimed = taskOf(this.engine.dags, ti.dag_id, ti.task_id);
    const named = describeTask(order.dagId, order.taskId, order.runId, order.mapIndex);
    const mismatch = `job ${job.id} named ${named}, but instance ${ti.id} is ${describeTask(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)}`;
    if (claimed && sameResources(this.engine.dags, claimed.task, planned.task)) {
      this.log.warn({ event: 'job_mismatch', job: job.id, tiId: ti.id }, `${mismatch}: running the instance's own task`);
      return claimed;
    }
    const err = new PermanentError(`${mismatch}, ${claimed ? 'which uses other resources' : 'which this worker has not loaded'}: not run`);
    if (ti.try_number < ti.max_tries) await this.engine.recordRetry(ti.id, ti.attempt_id, err, 0);
    else await this.#end(ti, 'failed', err);
    throw badJob(job, err.message);
  }

  /**
   * A success is recorded even across a PostgreSQL outage: the commit is tried again every
   * second until the store answers (or this worker stops), so the run moves on as soon as it is
   * back. Giving up at once would leave the try to the recovery sweep, which counts it lost and
   * runs the task again: a task with one try would be dead-lettered for work it had done.
   */
  async #recordSuccess(commit: () => Promise<unknown>, log: Logger): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await commit();
        if (attempt > 1) log.info({ event: 'success_recorded', attempts: attempt }, 'the store is back: success recorded');
        return;
      } catch (err) {
        if (!isUnreachable(err) || this.#stopping.signal.aborted) throw err;
        if (attempt % 30 === 1)
          log.warn({ event: 'success_unrecorded', err }, 'the store cannot be reached; recording the success again every second until it answers');
        await sleep(1_000, undefined, { signal: this.#stopping.signal }).catch(() => undefined);
      }
    }
  }

  /** Records a try that ends the instance without a result: skipped, or failed for good. */
  #end(ti: StartedTask, outcome: 'skipped' | 'failed', error: unknown): Promise<void> {
    return this.engine.completeTask({ tiId: ti.id, runId: ti.run_id, dagId: ti.dag_id, taskId: ti.task_id, attemptId: ti.attempt_id, outcome, error });
  }

  /** The task skipped itself (SkipTaskError): the instance ends `skipped`, its reason kept as its error. */
  async #skipped(ti: StartedTask, err: Error, log: Logger): Promise<string> {
    await this.#end(ti, 'skipped', err);
    log.info({ event: 'task_skipped', reason: err.message }, `task skipped: ${err.message}`);
    return 'skipped';
  }

  async #failed(ti: StartedTask, err: unknown, log: Logger, policy: RetryPolicy, resources: readonly Resource[]): Promise<never> {
    const retry = isRetryable(err) && ti.try_number < ti.max_tries;
    const { message } = describeError(err);
    if (retry) {
      // A backoff never ends inside a blackout: it moves to the window's end, plus jitter.
      const { delayMs: delay, deferral } = delayPastBlackouts(resources, backoffDelay(policy, ti.try_number));
      await this.engine.recordRetry(ti.id, ti.attempt_id, err, delay);
      const why = deferral ? ` (after ${deferral.reason})` : '';
      log.warn({ event: 'task_retry', err, delayMs: delay, deferral }, `try ${ti.try_number}/${ti.max_tries} failed, retrying in ${delay} ms${why}`);
      throw new RetryScheduled(message, delay);
    }
    await this.#end(ti, 'failed', err);
    log.error({ event: 'task_failed', err }, `task failed after ${ti.try_number} of ${ti.max_tries} tries`);
    throw new UnrecoverableError(message);
  }

  async #context(ti: StartedTask, signal: AbortSignal, log: Logger): Promise<TaskContext<never>> {
    const engine = this.engine;
    const dag = engine.dag(ti.dag_id);
    const task = dag.tasks.get(ti.task_id)!;
    const resources = await this.#resources.named(task.handles.map(([name, id]) => [name, engine.dags.resources.get(id)!] as const));
    return Object.freeze({
      dagId: ti.dag_id,
      runId: ti.run_id,
      taskId: ti.task_id,
      mapIndex: ti.map_index,
      tryNumber: ti.try_number,
      maxTries: ti.max_tries,
      logicalDate: new Date(ti.logical_date),
      dataInterval: Object.freeze({ start: new Date(ti.interval_start), end: new Date(ti.interval_end) }),
      conf: Object.freeze({ ...ti.conf }),
      item: ti.map_item as never,
      log,
      signal,
      resources,
      records: taskRecords(engine.db, ti.run_id, ti.task_id),
      async alert(message: string, details: Record<string, unknown> = {}) {
        await engine.escalate({
          kind: 'task_alert',
          dagId: ti.dag_id,
          runId: ti.run_id,
          taskId: ti.task_id,
          mapIndex: ti.map_index,
          owner: dag.owner,
          message,
          details,
        });
      },
      skip(reason: string): never {
        throw new SkipTaskError(reason);
      },
      async upstream<T>(ref: TaskRef): Promise<T> {
        const upstreamId = dag.taskIdOf(ref);
        if (upstreamId === undefined || !task.upstream.includes(upstreamId)) {
          const named = typeof ref === 'string' ? `'${ref}'` : upstreamId === undefined ? 'a task not in this DAG' : `'${upstreamId}'`;
          throw new PermanentError(
            `task '${ti.task_id}' asked for the result of ${named}, which is not one of its upstreams (${task.upstream.join(', ') || 'none'})`,
          );
        }
        return (await upstreamResult(engine.db, ti.run_id, upstreamId, dag.tasks.get(upstreamId)?.map !== undefined)) as T;
      },
    }) as TaskContext<never>;
  }

  /**
   * Stops taking jobs and aborts the running tasks: each try fails (and is retried if it has
   * tries left), or with `abandon` is left running, for the recovery sweep to hand on.
   */
  async close(options: { abandon?: boolean } = {}): Promise<void> {
    clearInterval(this.#heartbeat);
    clearInterval(this.#cancelCheck);
    this.#stopping.abort();
    const reason = options.abandon ? new Abandoned('the worker stopped before the task finished') : new Error('worker shutting down');
    for (const c of this.#running.values()) c.abort(reason);
    await this.worker.close();
    await Promise.allSettled([...this.#committing]);
  }
}

/** The result as the JSON the store keeps; a value it cannot keep fails the task for good, naming it. */
function storableResult(ti: StartedTask, result: unknown): string {
  const what = `task '${ti.task_id}' of DAG '${ti.dag_id}'`;
  const stored = toStorableJson(result, 'result', MAX_RESULT_DEPTH);
  if ('problem' in stored) throw new PermanentError(`${what} returned a result the store cannot keep: ${stored.problem}`);
  // A UTF-16 unit is at most 3 bytes of UTF-8: most results need no count.
  const bytes = stored.json.length * 3 > MAX_RESULT_BYTES ? Buffer.byteLength(stored.json, 'utf8') : 0;
  if (bytes > MAX_RESULT_BYTES) {
    throw new PermanentError(
      `${what} returned a result of ${bytes} bytes (JSON, UTF-8), more than ${MAX_RESULT_BYTES}: put bulk data in staging and return a reference`,
    );
  }
  return stored.json;
}
