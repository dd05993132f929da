import { DelayedError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import { PermanentError, RetryableError, TaskCancelledError, TaskTimeoutError, describeError, isRetryable, isSkip } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { setTimeout as sleep } from 'node:timers/promises';
import { isUnreachable } from '../connections/outage.ts';
import { upstreamResult } from '../store/results.ts';
import type { TaskContext, TaskRef } from './dag.ts';
import { TASK_QUEUE, type TaskJobData } from './dispatch.ts';
import type { Engine, StartedTask } from './engine.ts';
import { taskRecords } from './records.ts';
import type { ResourceHandles } from './resource-handles.ts';
import { nextBlackoutStart, type Resource } from './resources.ts';
import { backoffDelay, type RetryPolicy } from './retry.ts';
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
}

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

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    options: ExecutorOptions,
  ) {
    this.#resources = options.resources;
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
    const { tiId, generation, dagId, taskId } = job.data;
    const found = taskOf(this.engine.dags, dagId, taskId);
    if (!found) {
      // A worker with another version of the DAG folder (a rolling deploy): leave the task to
      // a worker that knows it, without spending one of its tries.
      this.log.warn({ dagId, taskId, tiId }, `task '${taskId}' of DAG '${dagId}' is not loaded in this worker; handing it back`);
      await job.moveToDelayed(Date.now() + 5_000 + Math.floor(Math.random() * 5_000), token);
      throw new DelayedError();
    }
    const resources = resourcesOf(this.engine.dags, found.task);
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
      await this.engine.settleUnstartable(tiId, generation);
      return 'not started: the store no longer expects this job';
    }
    const { task } = found;
    const log = this.log.child({ dagId, runId: ti.run_id, taskId, mapIndex: ti.map_index, try: ti.try_number });
    const controller = new AbortController();
    this.#running.set(tiId, controller);
    const cancelTimer = cancelAtBlackout(resources, controller, log);
    try {
      const result = await runAbortable(controller, task.timeoutMs, () => this.#context(ti, controller.signal, log).then((ctx) => task.run(ctx)));
      const json = JSON.stringify(result ?? null);
      if (json.length > MAX_RESULT_BYTES) {
        throw new PermanentError(`result is ${json.length} bytes, more than ${MAX_RESULT_BYTES}: put bulk data in staging and return a reference`);
      }
      // The BullMQ job is released without waiting for the commit: the slot takes the next job
      // while the success is group-committed with others. Until it is committed the instance
      // keeps its heartbeat; were this process to die first, the store still says `running`
      // and the recovery sweep runs the task again, so a success is never lost, only repeated.
      const committed = this.#recordSuccess(
        () => this.engine.completeTask({ tiId, runId: ti.run_id, dagId, taskId, attemptId: ti.attempt_id, outcome: 'success', result: json }),
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

/**
 * Runs the task until it settles or its controller aborts (timeout, blackout, shutdown): then
 * the try fails with the abort's reason, whether or not the task listens to its signal.
 */
async function runAbortable<T>(controller: AbortController, timeoutMs: number | undefined, fn: () => T): Promise<Awaited<T>> {
  const timer = timeoutMs ? setTimeout(() => controller.abort(new TaskTimeoutError(`timed out after ${timeoutMs} ms`)), timeoutMs) : undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(controller.signal.reason);
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([Promise.resolve().then(fn), aborted]);
  } finally {
    clearTimeout(timer);
    controller.signal.removeEventListener('abort', onAbort!);
  }
}

/** For resources with onBlackout 'cancel': aborts the task when the next blackout begins. */
function cancelAtBlackout(resources: readonly Resource[], controller: AbortController, log: Logger): NodeJS.Timeout | undefined {
  const window = nextBlackoutStart(
    resources.filter((r) => r.onBlackout === 'cancel'),
    new Date(),
  );
  if (!window) return undefined;
  const timer = setTimeout(() => {
    log.warn({ event: 'task_cancelled', resource: window.resource, reason: window.reason }, `cancelled: ${window.resource} enters blackout (${window.reason})`);
    controller.abort(new RetryableError(`cancelled: ${window.resource} entered a blackout (${window.reason}) while the task ran`));
  }, window.start.getTime() - Date.now());
  timer.unref();
  return timer;
}
