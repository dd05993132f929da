import { Executor } from './engine/executor.ts';
import { Scheduler, type SchedulerOptions } from './engine/scheduler.ts';
import type { Runtime } from './runtime.ts';

/** A worker process's part: BullMQ consumers running tasks. */
export function startWorker(rt: Runtime, options: { concurrency?: number; queue?: string } = {}): Executor {
  return reportingOutages(
    rt,
    new Executor(rt.engine, rt.log.child({ component: 'worker' }), {
      connection: rt.connection,
      prefix: rt.config.HUBFLOW_QUEUE_PREFIX,
      concurrency: options.concurrency ?? rt.config.HUBFLOW_WORKER_CONCURRENCY,
      lockMs: rt.config.HUBFLOW_LOCK_MS,
      resources: rt.resources,
      queue: options.queue,
    }),
  );
}

/**
 * BullMQ reconnects to Redis by itself, emitting an error on every try: while Redis is away the
 * service watch says so at growing intervals instead of one log line a second.
 */
function reportingOutages(rt: Runtime, executor: Executor): Executor {
  const log = rt.log.child({ component: 'worker' });
  executor.worker.removeAllListeners('error');
  executor.worker.on('error', (err) => {
    if (!rt.services.failed(err)) log.error({ err }, 'worker connection error');
  });
  return executor;
}

/**
 * The scheduler's loop, waiting out an outage: a tick that fails because PostgreSQL or Redis
 * cannot be reached waits until they answer (saying so), rather than failing every second.
 * Every tick is idempotent, so the next one after the outage catches up.
 */
class WaitingScheduler extends Scheduler {
  readonly #stopping = new AbortController();

  constructor(
    private readonly rt: Runtime,
    ...args: ConstructorParameters<typeof Scheduler>
  ) {
    super(...args);
  }

  override async tick(): Promise<void> {
    try {
      await this.rt.services.untilUp(this.#stopping.signal);
      await super.tick();
    } catch (err) {
      if (this.#stopping.signal.aborted) return;
      if (!this.rt.services.failed(err)) throw err;
    }
  }

  override async stop(): Promise<void> {
    this.#stopping.abort();
    await super.stop();
  }
}

/** A scheduler process's part: due runs, queued runs, the recovery sweep. */
export function startScheduler(rt: Runtime, options: Partial<SchedulerOptions> = {}): Scheduler {
  const scheduler = new WaitingScheduler(rt, rt.engine, rt.log.child({ component: 'scheduler' }), {
    tickMs: rt.config.HUBFLOW_SCHEDULER_TICK_MS,
    sweepMs: rt.config.HUBFLOW_SWEEP_INTERVAL_MS,
    ...options,
  });
  scheduler.start();
  return scheduler;
}
