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

export type JobRef = Pick<Dispatchable, 'runId' | 'taskId' | 'mapIndex' | 'generation'>;

const KEEP = {
  removeOnComplete: { age: 24 * 3600, count: 50_000 },
  removeOnFail: { age: 7 * 24 * 3600 },
} satisfies JobsOptions;

/** Hands queued task instances to BullMQ. It only dispatches: the store decides what is ready. */
export class Dispatcher {
  readonly queue: Queue<TaskJobData>;

  constructor(
    connection: ConnectionOptions,
    prefix: string,
    /** The store's installation id (see migration 0003). */
    private readonly installation: string,
  ) {
    this.queue = new Queue<TaskJobData>(TASK_QUEUE, { connection, prefix });
  }

  /**
   * Deterministic: the same instance and generation always get the same id, so a second
   * enqueue (a retried commit, the recovery sweep racing the dispatcher) is a no-op in BullMQ.
   * No ':' (BullMQ reserves it), and readable in bull-board:
   * <installation>.r<run>.<task>[.<map index>].g<generation>.
   */
  jobId(d: JobRef): string {
    const map = d.mapIndex >= 0 ? `.${d.mapIndex}` : '';
    return `${this.installation}.r${d.runId}.${d.taskId}${map}.g${d.generation}`;
  }

  async enqueue(items: readonly (Dispatchable & { deferral?: Deferral })[]): Promise<void> {
    if (!items.length) return;
    await this.queue.addBulk(
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

  close(): Promise<void> {
    return this.queue.close();
  }
}
