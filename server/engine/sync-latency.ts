import { sql } from 'kysely';
import type { Store } from '../store/db.ts';
import { emptyHistogram, LATENCY_BOUNDS, mergeInto, type LatencyHistogram, type LatencyRecord, type LatencySource } from '../../core/latency-histogram.ts';

export * from '../../core/latency-histogram.ts';

/**
 * Sync latency in the store: each load or filing records its histogram (core/latency-histogram.ts)
 * in sync_latency; a window's latency merges them (bucket counts summed in SQL).
 */

/** Where a record comes from: a DAG run's task, or (the CDC stream) an integration named directly. */
export type LatencyOrigin = { dagId?: string; runId: number; taskId: string } | { integration: string };

/** Keeps histograms in the store; empty ones are dropped (nothing was measured). */
export async function recordSyncLatency(db: Store, origin: LatencyOrigin, records: readonly LatencyRecord[]): Promise<void> {
  const rows = records.filter((r) => r.histogram.count > 0);
  if (!rows.length) return;
  const run = 'runId' in origin ? origin : null;
  const dagId = run ? (run.dagId ?? (await db.selectFrom('dag_runs').select('dag_id').where('id', '=', run.runId).executeTakeFirstOrThrow()).dag_id) : null;
  await db
    .insertInto('sync_latency')
    .values(
      rows.map((r) => ({
        dag_id: dagId,
        run_id: run?.runId ?? null,
        task_id: run?.taskId ?? null,
        integration: 'integration' in origin ? origin.integration : null,
        kind: r.kind,
        entity: r.entity,
        scope: r.scope,
        source: r.source,
        count: r.histogram.count,
        sum_seconds: r.histogram.sumSeconds,
        min_seconds: r.histogram.minSeconds,
        max_seconds: r.histogram.maxSeconds,
        buckets: r.histogram.buckets,
        visible_at: r.visibleAt,
      })),
    )
    .execute();
}

/** A stored row's histogram. */
export function rowHistogram(r: {
  count: string | number;
  sum_seconds: number;
  min_seconds: number;
  max_seconds: number;
  buckets: (string | number)[];
}): LatencyHistogram {
  return {
    count: Number(r.count),
    sumSeconds: r.sum_seconds,
    minSeconds: r.min_seconds,
    maxSeconds: r.max_seconds,
    buckets: r.buckets.map(Number),
  };
}

/** What a window of records says about one DAG's (or integration's) latency. */
export interface WindowLatency {
  histogram: LatencyHistogram;
  /** The change-time sources the measurements used, e.g. ['updated_at'] or ['wal_commit']. */
  sources: LatencySource[];
}

/**
 * Each DAG's latency over the window ending now: every record of its runs, plus the records
 * naming its integration with no DAG (the CDC stream's). One pass over the window's rows, the
 * buckets summed index by index in the store.
 */
export async function latencyOverWindow(
  db: Store,
  dags: readonly { id: string; integration: string }[],
  windowMs: number,
): Promise<Map<string, WindowLatency>> {
  const out = new Map<string, WindowLatency>();
  if (!dags.length) return out;
  const since = sql<Date>`now() - make_interval(secs => ${windowMs / 1000})`;
  const bucketSums = sql.join(
    [...LATENCY_BOUNDS, null].map((_, i) => sql`sum(buckets[${sql.lit(i + 1)}])`),
    sql`, `,
  );
  const ids = dags.map((d) => d.id);
  const integrations = dags.map((d) => d.integration);
  const rows = await db
    .selectFrom('sync_latency')
    .select([
      'dag_id',
      'integration',
      'source',
      sql<string>`sum(count)`.as('count'),
      sql<number>`sum(sum_seconds)`.as('sum_seconds'),
      sql<number>`min(min_seconds)`.as('min_seconds'),
      sql<number>`max(max_seconds)`.as('max_seconds'),
      sql<string[]>`array[${bucketSums}]`.as('buckets'),
    ])
    .where('recorded_at', '>', since)
    .where((eb) => eb.or([eb('dag_id', 'in', ids), eb.and([eb('dag_id', 'is', null), eb('integration', 'in', integrations)])]))
    .groupBy(['dag_id', 'integration', 'source'])
    .execute();
  for (const r of rows) {
    for (const d of dags.filter((d) => (r.dag_id === null ? d.integration === r.integration : d.id === r.dag_id))) {
      const e = out.get(d.id) ?? out.set(d.id, { histogram: emptyHistogram(), sources: [] }).get(d.id)!;
      mergeInto(e.histogram, rowHistogram(r));
      if (!e.sources.includes(r.source)) e.sources.push(r.source);
    }
  }
  for (const e of out.values()) e.sources.sort();
  return out;
}
