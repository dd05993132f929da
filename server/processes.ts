import { Executor } from './engine/executor.ts';
import { Scheduler, type SchedulerOptions } from './engine/scheduler.ts';
import type { Runtime } from './runtime.ts';

/** A worker process's part: BullMQ consumers running tasks. */
export function startWorker(rt: Runtime, options: { concurrency?: number; queue?: string } = {}): Executor {
  return new Executor(rt.engine, rt.log.child({ component: 'worker' }), {
    connection: rt.connection,
    prefix: rt.config.HUBFLOW_QUEUE_PREFIX,
    concurrency: options.concurrency ?? rt.config.HUBFLOW_WORKER_CONCURRENCY,
    lockMs: rt.config.HUBFLOW_LOCK_MS,
    connections: rt.connections,
    queue: options.queue,
  });
}

/** A scheduler process's part: due runs, queued runs, the recovery sweep. */
export function startScheduler(rt: Runtime, options: Partial<SchedulerOptions> = {}): Scheduler {
  const scheduler = new Scheduler(rt.engine, rt.log.child({ component: 'scheduler' }), {
    tickMs: rt.config.HUBFLOW_SCHEDULER_TICK_MS,
    sweepMs: rt.config.HUBFLOW_SWEEP_INTERVAL_MS,
    ...options,
  });
  scheduler.start();
  return scheduler;
}
