/**
 * Sync latency as measured: from a change in the hub to the warehouse commit that made it
 * visible (per version), or from a filing's data cut to its delivery. Each load or filing keeps a
 * histogram over fixed, roughly log-spaced buckets from 1 s to 7 days (ratio at most 2.5 below
 * 10 s, at most 2 above), with count, sum, min and max; merging histograms is adding counts, so a
 * window's percentiles never re-read the warehouse. The bounds fall on the platform's latency
 * objectives (5 and 30 minutes, 2 and 6 hours), so "within the SLO" is exact at those points.
 */
export const LATENCY_BOUNDS = [
  1, 2, 5, 10, 15, 30, 45, 60, 90, 120, 180, 300, 450, 600, 900, 1200, 1800, 2700, 3600, 5400, 7200, 10_800, 14_400, 21_600, 28_800, 43_200, 64_800, 86_400,
  129_600, 172_800, 259_200, 345_600, 604_800,
] as const;

/** Where a latency starts: the hub transaction's WAL commit time, the row's updated_at, or a filing's data cut. */
export type LatencySource = 'wal_commit' | 'updated_at' | 'data_cut';

/** Counts per bucket: `buckets[i]` holds latencies in (LATENCY_BOUNDS[i-1], LATENCY_BOUNDS[i]], the last one those above 7 days. */
export interface LatencyHistogram {
  count: number;
  sumSeconds: number;
  minSeconds: number;
  maxSeconds: number;
  buckets: number[];
}

/** One histogram as a load or a filing records it. */
export interface LatencyRecord {
  kind: 'version' | 'filing';
  /** The entity loaded, or the filing's jurisdiction. */
  entity: string;
  /** The tenant (or the global scope) the load or filing covered. */
  scope: string | null;
  source: LatencySource;
  /** When the data became visible: taken after the warehouse COMMIT returned, or after the filing's manifest was in place. */
  visibleAt: Date;
  histogram: LatencyHistogram;
}

/** The bucket a latency falls in (a negative one, a hub clock ahead of the warehouse's, counts as 0). */
export function bucketOf(seconds: number): number {
  const i = LATENCY_BOUNDS.findIndex((b) => seconds <= b);
  return i === -1 ? LATENCY_BOUNDS.length : i;
}

export const emptyHistogram = (): LatencyHistogram => ({
  count: 0,
  sumSeconds: 0,
  minSeconds: Number.POSITIVE_INFINITY,
  maxSeconds: Number.NEGATIVE_INFINITY,
  buckets: new Array<number>(LATENCY_BOUNDS.length + 1).fill(0),
});

/** The histogram of some latencies, in seconds. */
export function histogramOf(seconds: Iterable<number>): LatencyHistogram {
  const h = emptyHistogram();
  for (const raw of seconds) {
    const s = Math.max(0, raw);
    h.count++;
    h.sumSeconds += s;
    h.minSeconds = Math.min(h.minSeconds, s);
    h.maxSeconds = Math.max(h.maxSeconds, s);
    h.buckets[bucketOf(s)]!++;
  }
  return h;
}

/** Adds `b` into `a`. */
export function mergeInto(a: LatencyHistogram, b: LatencyHistogram): LatencyHistogram {
  a.count += b.count;
  a.sumSeconds += b.sumSeconds;
  a.minSeconds = Math.min(a.minSeconds, b.minSeconds);
  a.maxSeconds = Math.max(a.maxSeconds, b.maxSeconds);
  b.buckets.forEach((n, i) => {
    a.buckets[i] = (a.buckets[i] ?? 0) + n;
  });
  return a;
}

/**
 * The q-quantile (0..1), Prometheus's way: find the bucket holding the rank, interpolate linearly
 * inside it. The bucket's ends are narrowed to the smallest and largest latency seen, so one
 * value (or values all in one bucket at its edge) reads exactly, and the open last bucket ends
 * at the maximum. Otherwise the error is at most the bucket's width.
 */
export function quantile(h: LatencyHistogram, q: number): number | null {
  if (h.count <= 0) return null;
  const rank = q * h.count;
  let below = 0;
  for (let i = 0; i < h.buckets.length; i++) {
    const n = h.buckets[i]!;
    if (n > 0 && below + n >= rank) {
      const lo = Math.max(i === 0 ? 0 : LATENCY_BOUNDS[i - 1]!, h.minSeconds);
      const hi = Math.min(LATENCY_BOUNDS[i] ?? h.maxSeconds, h.maxSeconds);
      if (hi <= lo) return hi;
      return lo + (hi - lo) * Math.max(0, (rank - below) / n);
    }
    below += n;
  }
  return h.maxSeconds;
}

/** A filing's latency: one span from its data cut to its delivery, both ISO instants. */
export function spanLatency(entity: string, scope: string | null, dataCut: string, deliveredAt: string): LatencyRecord {
  const seconds = (Date.parse(deliveredAt) - Date.parse(dataCut)) / 1000;
  return { kind: 'filing', entity, scope, source: 'data_cut', visibleAt: new Date(deliveredAt), histogram: histogramOf([seconds]) };
}
