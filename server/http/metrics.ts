import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { refreshSlotGauges, slotGauges, type SlotGauges } from '../../cdc/monitor.ts';
import { measureIntegrations } from '../engine/integrations.ts';
import { observeSyncLatency, SyncLatencyHistogram } from '../engine/sync-latency-metric.ts';
import type { Runtime } from '../runtime.ts';
import { Watermark } from './watermark.ts';

/** How far each scrape reaches behind the previous one, for rows that committed late. */
export const OVERLAP_MS = 10_000;

const DURATION_BUCKETS = [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600];
const HANDOFF_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
// A catch-up run can be due hours or days before it starts.
const SCHEDULE_BUCKETS = [0.1, 0.25, 0.5, 1, 2, 5, 10, 30, 60, 300, 900, 3600, 4 * 3600, 24 * 3600];

const secondsBetween = (later: string, earlier: string) => sql<number>`extract(epoch from ${sql.ref(later)} - ${sql.ref(earlier)})::float8`;

/**
 * Prometheus metrics of the whole installation. Scheduler, workers and this server are separate
 * processes, so nothing here counts events as they happen: each scrape reads from the store what
 * finished since the previous scrape and feeds it to the histograms and counters.
 */
export class StoreMetrics {
  readonly registry = new Registry();
  readonly #rt: Runtime;
  readonly #window: Watermark;
  // Two overlapping scrapes would both observe the same rows.
  #last: Promise<unknown> = Promise.resolve();

  readonly #taskDuration: Histogram<'dag' | 'task' | 'outcome'>;
  readonly #attempts: Counter<'dag' | 'outcome'>;
  readonly #retries: Counter<'dag'>;
  readonly #handoff: Histogram<'dag'>;
  readonly #scheduleDelay: Histogram<'dag'>;
  readonly #runs: Counter<'dag' | 'state'>;
  readonly #slaMisses: Counter<'dag'>;
  readonly #deferred: Gauge<'dag'>;
  readonly #deadLetters: Gauge<'dag'>;
  readonly #deadLetterAge: Gauge<'dag'>;
  readonly #runsActive: Gauge<'dag' | 'state'>;
  readonly #queueJobs: Gauge<'state'>;
  readonly #reconMatch: Gauge<'entity' | 'tenant'>;
  readonly #reconDiff: Gauge<'entity' | 'tenant'>;
  readonly #integration: IntegrationGauges;
  readonly #syncLatency: SyncLatencyHistogram;
  readonly #cdcSlots: SlotGauges;

  /** Only what happens after `since` is observed: a restarted server does not replay history. */
  constructor(rt: Runtime, since = new Date()) {
    this.#rt = rt;
    this.#window = new Watermark(since, OVERLAP_MS);
    const registers = [this.registry];
    this.#taskDuration = new Histogram({
      name: 'hubflow_task_duration_seconds',
      help: 'Duration of finished task attempts, by outcome (success, retry, failed, lost, skipped)',
      labelNames: ['dag', 'task', 'outcome'],
      buckets: DURATION_BUCKETS,
      registers,
    });
    this.#attempts = new Counter({
      name: 'hubflow_task_attempts_total',
      help: 'Finished task attempts, by outcome (success, retry, failed, lost, skipped)',
      labelNames: ['dag', 'outcome'],
      registers,
    });
    this.#retries = new Counter({
      name: 'hubflow_task_retries_total',
      help: 'Task attempts that ended in a retry or were lost with their worker',
      labelNames: ['dag'],
      registers,
    });
    this.#handoff = new Histogram({
      name: 'hubflow_handoff_delay_seconds',
      help: "From a task instance becoming ready (its upstreams done, queued) to its first attempt's start",
      labelNames: ['dag'],
      buckets: HANDOFF_BUCKETS,
      registers,
    });
    this.#scheduleDelay = new Histogram({
      name: 'hubflow_schedule_delay_seconds',
      help: 'From a scheduled run becoming due to its start',
      labelNames: ['dag'],
      buckets: SCHEDULE_BUCKETS,
      registers,
    });
    this.#runs = new Counter({ name: 'hubflow_runs_total', help: 'Finished DAG runs', labelNames: ['dag', 'state'], registers });
    this.#slaMisses = new Counter({
      name: 'hubflow_sla_misses_total',
      help: 'Runs that missed (or were projected to miss) their start window or deadline',
      labelNames: ['dag'],
      registers,
    });
    this.#deferred = new Gauge({
      name: 'hubflow_tasks_deferred',
      help: 'Task instances waiting for a resource blackout to end',
      labelNames: ['dag'],
      registers,
    });
    this.#deadLetters = new Gauge({ name: 'hubflow_dead_letters', help: 'Open (unresolved) dead letters', labelNames: ['dag'], registers });
    this.#deadLetterAge = new Gauge({
      name: 'hubflow_dead_letter_oldest_age_seconds',
      help: 'Age of the oldest open dead letter',
      labelNames: ['dag'],
      registers,
    });
    this.#runsActive = new Gauge({ name: 'hubflow_runs_active', help: 'Queued and running DAG runs', labelNames: ['dag', 'state'], registers });
    this.#queueJobs = new Gauge({ name: 'hubflow_queue_jobs', help: 'Jobs in the BullMQ task queue, by state', labelNames: ['state'], registers });
    this.#reconMatch = new Gauge({
      name: 'hubflow_reconciliation_match_ratio',
      help: 'Latest reconciliation of each tenant and entity: share of hub records the warehouse holds exactly (target above 0.999)',
      labelNames: ['entity', 'tenant'],
      registers,
    });
    this.#reconDiff = new Gauge({
      name: 'hubflow_reconciliation_differences',
      help: 'Latest reconciliation of each tenant and entity: records mismatched or missing on either side (drift found)',
      labelNames: ['entity', 'tenant'],
      registers,
    });
    this.#integration = integrationGauges(registers);
    this.#syncLatency = new SyncLatencyHistogram(registers);
    this.#cdcSlots = slotGauges(registers);
  }

  /** Observes what finished since the last call, refreshes the gauges and returns the exposition text. */
  scrape(): Promise<string> {
    const next = this.#last.then(() => this.#scrape());
    this.#last = next.catch(() => undefined);
    return next;
  }

  async #scrape(): Promise<string> {
    await this.#observeFinished();
    await this.#refreshGauges();
    await refreshIntegrationGauges(this.#integration, this.#rt);
    await refreshSlotGauges(this.#cdcSlots, this.#rt.config.HUBFLOW_HUB_URL ?? this.#rt.postgres.url, this.#rt.log);
    return this.registry.metrics();
  }

  async #observeFinished(): Promise<void> {
    const db = this.#rt.db;
    // The store's clock, read before the queries: whatever they miss is stamped after it.
    const { rows } = await sql<{ now: Date }>`select now() as now`.execute(db);
    const now = rows[0]!.now;
    const from = this.#window.from;

    const [attempts, firstStarts, runsStarted, runsEnded, slaMisses] = await Promise.all([
      db
        .selectFrom('attempts as a')
        .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
        .select(['a.id', 'a.outcome', 'a.ended_at', 'ti.dag_id', 'ti.task_id', secondsBetween('a.ended_at', 'a.started_at').as('seconds')])
        .where('a.ended_at', '>', from)
        .execute(),
      db
        .selectFrom('attempts as a')
        .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
        .select(['a.id', 'a.started_at', 'ti.dag_id', secondsBetween('a.started_at', 'ti.ready_at').as('seconds')])
        .where('a.try_number', '=', 1)
        .where('a.started_at', '>', from)
        // An attempt that started after `from` is still open or ended after it: this lets the
        // ended_at index do the work, there being none on started_at.
        .where((eb) => eb.or([eb('a.ended_at', 'is', null), eb('a.ended_at', '>', from)]))
        .where('ti.ready_at', 'is not', null)
        .execute(),
      db
        .selectFrom('dag_runs')
        .select(['id', 'dag_id', 'started_at', secondsBetween('started_at', 'due_at').as('seconds')])
        .where('run_type', '=', 'scheduled')
        .where('started_at', '>', from)
        .execute(),
      db
        .selectFrom('dag_runs')
        .select(['id', 'dag_id', 'state', 'ended_at'])
        .where('state', 'in', ['success', 'failed', 'cancelled'])
        .where('ended_at', '>', from)
        .execute(),
      db.selectFrom('dag_runs').select(['id', 'dag_id', 'sla_alerted_at']).where('sla_alerted_at', '>', from).execute(),
    ]);

    for (const a of attempts) {
      if (!a.ended_at || !this.#window.fresh(`a${a.id}`, a.ended_at)) continue;
      this.#taskDuration.observe({ dag: a.dag_id, task: a.task_id, outcome: a.outcome }, Math.max(0, a.seconds));
      this.#attempts.inc({ dag: a.dag_id, outcome: a.outcome });
      if (a.outcome === 'retry' || a.outcome === 'lost') this.#retries.inc({ dag: a.dag_id });
    }
    for (const a of firstStarts) {
      if (!this.#window.fresh(`h${a.id}`, a.started_at)) continue;
      this.#handoff.observe({ dag: a.dag_id }, Math.max(0, a.seconds));
    }
    for (const r of runsStarted) {
      if (!r.started_at || !this.#window.fresh(`s${r.id}`, r.started_at)) continue;
      this.#scheduleDelay.observe({ dag: r.dag_id }, Math.max(0, r.seconds));
    }
    for (const r of runsEnded) {
      // A cleared run ends again later: the end time is part of the key.
      if (!r.ended_at || !this.#window.fresh(`e${r.id}@${r.ended_at.getTime()}`, r.ended_at)) continue;
      this.#runs.inc({ dag: r.dag_id, state: r.state });
    }
    for (const r of slaMisses) {
      if (!r.sla_alerted_at || !this.#window.fresh(`sla${r.id}`, r.sla_alerted_at)) continue;
      this.#slaMisses.inc({ dag: r.dag_id });
    }
    await observeSyncLatency(
      db,
      this.#syncLatency,
      from,
      (k, at) => this.#window.fresh(k, at),
      (id) => this.#rt.dags.dags.get(id)?.integration?.name,
    );
    this.#window.advance(now);
  }

  async #refreshGauges(): Promise<void> {
    const db = this.#rt.db;
    const [deadLetters, active, jobCounts, deferred, reconciliations] = await Promise.all([
      db
        .selectFrom('dead_letters')
        .select(['dag_id', (eb) => eb.fn.countAll<number>().as('n'), sql<number>`extract(epoch from now() - min(created_at))::float8`.as('age')])
        .where('resolved_at', 'is', null)
        .groupBy('dag_id')
        .execute(),
      db
        .selectFrom('dag_runs')
        .select(['dag_id', 'state', (eb) => eb.fn.countAll<number>().as('n')])
        .where('state', 'in', ['queued', 'running'])
        .groupBy(['dag_id', 'state'])
        .execute(),
      this.#rt.engine.dispatcher.queue.getJobCounts(),
      db
        .selectFrom('task_instances')
        .select(['dag_id', (eb) => eb.fn.countAll<number>().as('n')])
        .where('state', '=', 'deferred')
        .groupBy('dag_id')
        .execute(),
      db
        .selectFrom('reconciliations')
        .distinctOn(['entity', 'tenant_id'])
        .select(['entity', 'tenant_id', 'mismatch_rate', sql<number>`mismatched + missing_in_target + missing_in_source`.as('differences')])
        .orderBy('entity')
        .orderBy('tenant_id')
        .orderBy('id', 'desc')
        .execute(),
    ]);

    // Reset, then zero for every loaded DAG: a series that drops to nothing should read 0, not vanish.
    this.#deadLetters.reset();
    this.#deadLetterAge.reset();
    this.#runsActive.reset();
    this.#queueJobs.reset();
    this.#deferred.reset();
    for (const dag of this.#rt.dags.dags.keys()) {
      this.#deadLetters.set({ dag }, 0);
      this.#deferred.set({ dag }, 0);
      this.#runsActive.set({ dag, state: 'queued' }, 0);
      this.#runsActive.set({ dag, state: 'running' }, 0);
    }
    for (const d of deadLetters) {
      this.#deadLetters.set({ dag: d.dag_id }, Number(d.n));
      this.#deadLetterAge.set({ dag: d.dag_id }, Math.max(0, d.age));
    }
    for (const r of active) this.#runsActive.set({ dag: r.dag_id, state: r.state }, Number(r.n));
    for (const [state, n] of Object.entries(jobCounts)) this.#queueJobs.set({ state }, n);
    for (const d of deferred) this.#deferred.set({ dag: d.dag_id }, Number(d.n));
    this.#reconMatch.reset();
    this.#reconDiff.reset();
    for (const r of reconciliations) {
      const labels = { entity: r.entity, tenant: r.tenant_id };
      this.#reconMatch.set(labels, Math.max(0, 1 - r.mismatch_rate));
      this.#reconDiff.set(labels, Number(r.differences));
    }
  }
}

type IntegrationGauges = ReturnType<typeof integrationGauges>;

/** Per integration, over the registry's default window (7 days), as `hubflow integrations` shows it. */
function integrationGauges(registers: Registry[]) {
  const labelNames = ['integration', 'dag'] as const;
  return {
    met: new Gauge({
      name: 'hubflow_integration_slo_met',
      help: 'Whether the integration meets each of its SLOs (1) or breaches it (0)',
      labelNames: [...labelNames, 'slo'],
      registers,
    }),
    success: new Gauge({
      name: 'hubflow_integration_success_ratio',
      help: 'Share of finished runs that succeeded, over the SLO window',
      labelNames,
      registers,
    }),
    latency: new Gauge({
      name: 'hubflow_integration_latency_seconds',
      help: 'Latency percentiles over the SLO window: measured per version or filing where recorded, else the run-end proxy (hubflow integrations says which)',
      labelNames: [...labelNames, 'quantile'],
      registers,
    }),
    deadLetters: new Gauge({ name: 'hubflow_integration_dead_letters', help: 'Open dead letters of the integration', labelNames, registers }),
  };
}

async function refreshIntegrationGauges(g: IntegrationGauges, rt: Runtime): Promise<void> {
  const statuses = await measureIntegrations(rt.db, rt.dags.dags.values());
  for (const gauge of Object.values(g)) gauge.reset();
  for (const s of statuses) {
    const labels = { integration: s.integration, dag: s.dag };
    for (const c of s.slos) g.met.set({ ...labels, slo: c.slo }, c.met ? 1 : 0);
    if (s.sli.successRate !== null) g.success.set(labels, s.sli.successRate);
    if (s.sli.latencyP50Seconds !== null) g.latency.set({ ...labels, quantile: '0.5' }, s.sli.latencyP50Seconds);
    if (s.sli.latencyP99Seconds !== null) g.latency.set({ ...labels, quantile: '0.99' }, s.sli.latencyP99Seconds);
    g.deadLetters.set(labels, s.sli.deadLetters);
  }
}

export function registerMetrics(app: FastifyInstance, rt: Runtime): StoreMetrics {
  const metrics = new StoreMetrics(rt);
  app.get('/metrics', async (_request, reply) => {
    const text = await metrics.scrape();
    return reply.type(metrics.registry.contentType).send(text);
  });
  return metrics;
}
