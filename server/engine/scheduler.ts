import type { Logger } from '../../core/log.ts';
import type { Dag } from './dag.ts';
import type { Engine } from './engine.ts';
import type { CronTimetable } from './timetable.ts';
import { checkIntegrations } from './integrations.ts';
import { checkSla, dueAt } from './sla.ts';
import { logRetentionMs, pruneTaskLogs } from './task-log-store.ts';

export interface SchedulerOptions {
  tickMs: number;
  sweepMs: number;
  /** Injectable for tests; the wall clock otherwise. */
  now?: () => Date;
}

/** At most this many runs are created per DAG per tick, so a long catchup cannot stall the loop. */
const MAX_NEW_RUNS_PER_TICK = 500;

/**
 * Creates due runs from each DAG's timetable, starts queued runs within maxActiveRuns, and runs
 * the recovery sweep. Any number of schedulers may run at once: the store's unique key on
 * (dag, logical date) makes creating a run idempotent, and starting runs takes a per-DAG lock.
 */
export class Scheduler {
  #timer: NodeJS.Timeout | undefined;
  #lastSweep = 0;
  #stopped = false;
  #busy: Promise<void> = Promise.resolve();
  readonly #now: () => Date;
  readonly #logRetentionMs: number;

  constructor(
    private readonly engine: Engine,
    private readonly log: Logger,
    private readonly options: SchedulerOptions,
  ) {
    this.#now = options.now ?? (() => new Date());
    this.#logRetentionMs = logRetentionMs(engine.config);
  }

  start(): void {
    const loop = () => {
      if (this.#stopped) return;
      this.#busy = this.tick()
        .catch((err: unknown) => this.log.error({ err }, 'scheduler tick failed'))
        .finally(() => {
          if (!this.#stopped) this.#timer = setTimeout(loop, this.options.tickMs);
        });
    };
    loop();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#busy;
  }

  async tick(): Promise<void> {
    for (const dag of this.engine.dags.dags.values()) {
      if (dag.timetable) await this.scheduleDag(dag);
    }
    const waiting = await this.engine.db.selectFrom('dag_runs').select('dag_id').distinct().where('state', '=', 'queued').execute();
    for (const { dag_id } of waiting) await this.engine.activate(dag_id);
    await checkSla(this.engine, this.#now());
    if (Date.now() - this.#lastSweep >= this.options.sweepMs) {
      this.#lastSweep = Date.now();
      await this.engine.sweep();
      // As often as the sweep: an SLO is measured over days, so seconds between checks are plenty.
      await checkIntegrations(this.engine);
      const pruned = await pruneTaskLogs(this.engine.db, new Date(this.#now().getTime() - this.#logRetentionMs));
      if (pruned) this.log.info({ event: 'task_logs_pruned', lines: pruned }, 'task log lines past HUBFLOW_LOG_RETENTION deleted');
    }
  }

  /** Creates the runs of `dag` that are due by now; returns their logical dates. */
  async scheduleDag(dag: Dag): Promise<Date[]> {
    const timetable = dag.timetable;
    if (!timetable) return [];
    const now = this.#now();
    const db = this.engine.db;
    const state = await db.selectFrom('dags').select('is_paused').where('dag_id', '=', dag.id).executeTakeFirst();
    if (state?.is_paused) return [];
    const last = await db
      .selectFrom('dag_runs')
      .select((eb) => eb.fn.max('logical_date').as('last'))
      .where('dag_id', '=', dag.id)
      .where('run_type', '=', 'scheduled')
      .executeTakeFirst();
    const lastDate = last?.last ? new Date(last.last) : undefined;

    // An interval [t, next(t)) is due once it is over: a run covers data that is complete.
    const latestTick = timetable.prev(new Date(now.getTime() + 1));
    const latestStart = latestTick && timetable.prev(latestTick);
    // Airflow compares the start date in wall-clock time (_align_to_next), not as an instant.
    const first = dag.startDate ? timetable.first(dag.startDate) : null;
    let starts: Date[] = [];
    if (dag.catchup) {
      const from = lastDate ? resumeAfter(timetable, lastDate, first) : (first ?? latestStart);
      for (let s = from; s && latestTick && s < latestTick && starts.length < MAX_NEW_RUNS_PER_TICK; s = timetable.next(s)) starts.push(s);
    } else {
      const fresh = latestStart && (!lastDate || latestStart > lastDate) && (!first || latestStart >= first);
      starts = fresh ? [latestStart] : [];
    }

    const created: Date[] = [];
    for (const start of starts) {
      const end = timetable.next(start)!;
      const run = await this.engine.createRun(dag, {
        logicalDate: start,
        intervalStart: start,
        intervalEnd: end,
        runType: 'scheduled',
        dueAt: dueAt(dag, start, end),
      });
      if (run) created.push(start);
    }
    if (created.length) this.log.info({ event: 'runs_created', dagId: dag.id, count: created.length, first: created[0] }, 'scheduled runs created');
    return created;
  }
}

/**
 * The tick after the last scheduled run, or the DAG's first tick if that is later (Airflow's
 * next_dagrun_info). Catchup walks on with next(), which also keeps a first tick that Airflow's
 * wall-clock alignment placed off the usual ticks.
 */
function resumeAfter(timetable: CronTimetable, lastDate: Date, first: Date | null): Date | null {
  const after = timetable.next(lastDate);
  return after && first && first > after ? first : after;
}
