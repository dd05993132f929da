import { Histogram, type Registry } from 'prom-client';
import type { Store } from '../store/db.ts';
import { emptyHistogram, LATENCY_BOUNDS, mergeInto, rowHistogram, type LatencyHistogram } from './sync-latency.ts';

type Labels = 'integration' | 'entity';

const NAME = 'hubflow_sync_latency_seconds';
const HELP = 'Sync latency: hub change to warehouse commit per version, data cut to delivery per filing (see `source` in hubflow integrations)';

/** What the exposition needs of prom-client's histogram output. */
interface Exposed {
  name: string;
  help: string;
  type: string;
  aggregator: string;
  values: { metricName: string; labels: Record<string, string | number>; value: number }[];
}

/**
 * `hubflow_sync_latency_seconds{integration,entity}`: a real Prometheus histogram of the sync
 * latencies recorded in the store since the server started (sync-latency.ts's buckets). The
 * measurements arrive as bucket counts, which prom-client's observe() cannot take, so the
 * exposition is built from them here; what a scrape reads is whatever was recorded since the
 * previous one (the caller's watermark), so the counters only ever grow.
 */
export class SyncLatencyHistogram extends Histogram<Labels> {
  readonly #state = new Map<string, { labels: Record<Labels, string>; h: LatencyHistogram }>();

  constructor(registers: Registry[]) {
    super({
      name: NAME,
      help: HELP,
      labelNames: ['integration', 'entity'],
      buckets: [...LATENCY_BOUNDS],
      registers,
    });
  }

  /** Adds one stored record's histogram. */
  add(labels: Record<Labels, string>, h: LatencyHistogram): void {
    const key = `${labels.integration}\u0000${labels.entity}`;
    const entry = this.#state.get(key) ?? this.#state.set(key, { labels, h: emptyHistogram() }).get(key)!;
    mergeInto(entry.h, h);
  }

  async getForPromString(): Promise<Exposed> {
    const values: Exposed['values'] = [];
    const bucket = `${NAME}_bucket`;
    for (const { labels, h } of this.#state.values()) {
      let below = 0;
      LATENCY_BOUNDS.forEach((le, i) => {
        below += h.buckets[i] ?? 0;
        values.push({ metricName: bucket, labels: { ...labels, le }, value: below });
      });
      values.push({ metricName: bucket, labels: { ...labels, le: '+Inf' }, value: h.count });
      values.push({ metricName: `${NAME}_sum`, labels, value: h.sumSeconds });
      values.push({ metricName: `${NAME}_count`, labels, value: h.count });
    }
    return { name: NAME, help: HELP, type: 'histogram', aggregator: 'sum', values };
  }
}

/** Feeds the histogram with the records stored after `from`; `fresh` says whether a row (by id) was not seen before. */
export async function observeSyncLatency(
  db: Store,
  metric: SyncLatencyHistogram,
  from: Date,
  fresh: (key: string, at: Date) => boolean,
  integrationOf: (dagId: string) => string | undefined,
): Promise<void> {
  const rows = await db
    .selectFrom('sync_latency')
    .select(['id', 'dag_id', 'integration', 'entity', 'count', 'sum_seconds', 'min_seconds', 'max_seconds', 'buckets', 'recorded_at'])
    .where('recorded_at', '>', from)
    .execute();
  for (const r of rows) {
    const integration = r.dag_id === null ? r.integration : integrationOf(r.dag_id);
    if (!integration || !fresh(`lat${r.id}`, r.recorded_at)) continue;
    metric.add({ integration, entity: r.entity }, rowHistogram(r));
  }
}
