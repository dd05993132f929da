import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import type { Dispatchable } from './advance.ts';
import type { Deferral } from './windows.ts';

export const TASK_QUEUE = 'tasks';

export interface TaskJobData {
  /** Set when the job waits for a blackout to end: shown in bull-board. */
  deferral?: { until: string; reason: string };
  tiId: number;
  generation: number;
  runId: number;
  dagId: string;
  taskId: string;
  mapIndex: number;
}

/** Jobs per addBulk call (see #add). */
const ADD_SLICE = 1_000;

export type JobRef = Pick<Dispatchable, 'runId' | 'taskId' | 'mapIndex' | 'generation'>;

const KEEP = {
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} satisfies JobsOptions;

/**
 * Hands queued task instances to BullMQ. It only dispatches: the store decides what is ready.
 * Jobs go to the shared queue every worker takes from, except those of a run routed to a queue
 * of its own (a `dags test` run: only the worker of the process that tests it takes them).
 */
export class Dispatcher {
  readonly queue: Queue<TaskJobData>;
  readonly #routes = new Map<number, Queue<TaskJobData>>();

  constructor(
    private readonly connection: ConnectionOptions,
    private readonly prefix: string,
    /** The store's installation id (see migration 0003). */
    private readonly installation: string,
  ) {
    this.queue = new Queue<TaskJobData>(TASK_QUEUE, { connection, prefix });
  }

  /** From now on, this process sends the run's jobs to the named queue. */
  route(runId: number, queueName: string): Queue<TaskJobData> {
    const queue = new Queue<TaskJobData>(queueName, { connection: this.connection, prefix: this.prefix });
    this.#routes.set(runId, queue);
    return queue;
  }

  queueOf(runId: number): Queue<TaskJobData> {
    return this.#routes.get(runId) ?? this.queue;
  }

  jobState(d: JobRef): ReturnType<Queue['getJobState']> {
    return this.queueOf(d.runId).getJobState(this.jobId(d));
  }

  /** Takes waiting and delayed jobs out of their queue; a job a worker holds stays (its start check stops it). */
  async remove(refs: readonly JobRef[]): Promise<void> {
    await Promise.all(
      refs.map((d) =>
        this.queueOf(d.runId)
          .remove(this.jobId(d))
          .catch(() => 0),
      ),
    );
  }

  /**
   * Deterministic: the same instance and generation always get the same id, so a second
   * enqueue (a retried commit, the recovery sweep racing the dispatcher) is a no-op in BullMQ.
   * Readable in bull-board: <installation>.r<run>/<task>[/<map index>]/g<generation>. The
   * parts are separated by '/', which a task id cannot contain (dag.ts allows letters, digits,
   * _ . -), so no two instances share an id: with '.' there, task `x` map index 0 and a task
   * named `x.0` both came out as `...r1.x.0.g0`. No ':' (BullMQ reserves it). A job an earlier
   * hubflow enqueued under the old form fails the worker's id check (job-check.ts) and starts
   * nothing; the recovery sweep finds its instance without a job and gives it one.
   */
  jobId(d: JobRef): string {
    const map = d.mapIndex >= 0 ? `/${d.mapIndex}` : '';
    return `${this.installation}.r${d.runId}/${d.taskId}${map}/g${d.generation}`;
  }

  async enqueue(items: readonly (Dispatchable & { deferral?: Deferral })[]): Promise<void> {
    const byQueue = new Map<Queue<TaskJobData>, (Dispatchable & { deferral?: Deferral })[]>();
    for (const d of items) {
      const queue = this.queueOf(d.runId);
      const some = byQueue.get(queue) ?? [];
      some.push(d);
      byQueue.set(queue, some);
    }
    await Promise.all([...byQueue].map(([queue, some]) => this.#add(queue, some)));
  }

  /**
   * In slices: BullMQ's addBulk builds a Job object and a pipelined command for every item at
   * once, so the 100,000 instances of a wide map would take over a gigabyte in one go; a slice
   * at a time keeps the memory flat in the width of the fan, at the same number of round trips
   * per job (one pipeline per slice).
   */
  async #add(queue: Queue<TaskJobData>, items: readonly (Dispatchable & { deferral?: Deferral })[]): Promise<void> {
    for (let i = 0; i < items.length; i += ADD_SLICE) await this.#addSlice(queue, items.slice(i, i + ADD_SLICE));
  }

  async #addSlice(queue: Queue<TaskJobData>, items: readonly (Dispatchable & { deferral?: Deferral })[]): Promise<void> {
    await queue.addBulk(
      items.map((d) => ({
        name: `${d.dagId}.${d.taskId}`,
        data: {
          tiId: d.tiId,
          generation: d.generation,
          runId: d.runId,
          dagId: d.dagId,
          taskId: d.taskId,
          mapIndex: d.mapIndex,
          ...(d.deferral ? { deferral: { until: d.deferral.until.toISOString(), reason: d.deferral.reason } } : {}),
        },
        opts: {
          jobId: this.jobId(d),
          attempts: d.triesLeft,
          backoff: { type: 'hubflow' },
          ...(d.delayMs ? { delay: d.delayMs } : {}),
          ...KEEP,
        },
      })),
    );
  }

  async close(): Promise<void> {
    await Promise.all([this.queue.close(), ...[...this.#routes.values()].map((q) => q.close())]);
  }
}
