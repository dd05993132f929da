import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureIntegrations } from '../../server/engine/integrations.ts';
import { bucketOf, LATENCY_BOUNDS, rowHistogram, emptyHistogram, mergeInto } from '../../server/engine/sync-latency.ts';
import { StoreMetrics } from '../../server/http/metrics.ts';
import { taskStates } from '../support.ts';
import { historyHarness, runNight, type HistoryHarness } from './support.ts';

/**
 * A nightly run over a demo hub where some workers changed at known times: each version's
 * latency (hub updated_at to the warehouse commit) lands where those times say, the registry's
 * percentiles come from these measurements, and /metrics exposes them as a histogram.
 */

let h: HistoryHarness;
const runs: number[] = [];
// The hub's clock before the change and after the second night: every latency is its offset plus at most this.
let slack = 0;
const RECENT = 11 * 60;
const OLD = 3 * 3600 + 10 * 60;
let metricsSince: Date;

const clock = async () => (await sql<{ now: Date }>`select clock_timestamp() as now`.execute(h.rt.db)).rows[0]!.now;

async function night(day: string) {
  const run = await runNight(h, day);
  expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
  runs.push(run.id);
}

beforeAll(async () => {
  h = await historyHarness({ tenants: 2, workers: 80, seed: 5 });
  await night('2026-01-01');
  metricsSince = await clock();
  const t0 = await clock();
  const workers = sql.id(h.hubSchema, 'workers');
  const ids = (
    await sql<{ worker_id: string; tenant_id: string }>`select worker_id, tenant_id from ${workers} order by tenant_id, worker_id limit 8`.execute(h.rt.db)
  ).rows;
  for (const [i, w] of ids.entries()) {
    const ago = i < 5 ? RECENT : OLD;
    await sql`update ${workers} set email = ${`moved-${i}@example.test`}, updated_at = ${t0}::timestamptz - make_interval(secs => ${ago})
      where tenant_id = ${w.tenant_id} and worker_id = ${w.worker_id}`.execute(h.rt.db);
  }
  // A delete: the hub keeps no time for it, so its tombstone is not measured.
  const gone = (
    await sql<{ worker_id: string; tenant_id: string }>`select worker_id, tenant_id from ${workers} order by tenant_id desc, worker_id desc limit 1`.execute(
      h.rt.db,
    )
  ).rows[0]!;
  await sql`delete from ${workers} where tenant_id = ${gone.tenant_id} and worker_id = ${gone.worker_id}`.execute(h.rt.db);
  await night('2026-01-02');
  slack = ((await clock()).getTime() - t0.getTime()) / 1000;
}, 120_000);

afterAll(async () => {
  await h?.close();
});

const rowsOf = (runId: number) => h.rt.db.selectFrom('sync_latency').selectAll().where('run_id', '=', runId).execute();

describe('sync latency of a nightly history run', () => {
  it('measures nothing for the first load (a backfill of history, not a sync)', async () => {
    expect(await rowsOf(runs[0]!)).toEqual([]);
  });

  it('gives each changed version its latency from the hub updated_at to the warehouse commit, and none to a tombstone', async () => {
    const tombstones = await sql<{
      n: string;
    }>`select count(*) as n from ${sql.id(h.whSchema, 'workers_history')} where run_id = ${runs[1]!} and is_deleted`.execute(h.rt.db);
    expect(Number(tombstones.rows[0]!.n)).toBe(1);
    const rows = await rowsOf(runs[1]!);
    expect(rows.map((r) => [r.dag_id, r.kind, r.entity, r.source, r.task_id])).toEqual(
      rows.map(() => ['hub-nightly', 'version', 'workers', 'updated_at', 'load']),
    );
    const merged = rows.map(rowHistogram).reduce(mergeInto, emptyHistogram());
    expect(merged.count).toBe(8);
    // Each span is its offset plus the time from the change to the commit: within the run's length.
    expect(merged.minSeconds).toBeGreaterThanOrEqual(RECENT);
    expect(merged.minSeconds).toBeLessThanOrEqual(RECENT + slack);
    expect(merged.maxSeconds).toBeGreaterThanOrEqual(OLD);
    expect(merged.maxSeconds).toBeLessThanOrEqual(OLD + slack);
    expect(merged.sumSeconds).toBeGreaterThanOrEqual(5 * RECENT + 3 * OLD);
    expect(merged.sumSeconds).toBeLessThanOrEqual(5 * RECENT + 3 * OLD + 8 * slack);
    const expected = new Array<number>(LATENCY_BOUNDS.length + 1).fill(0);
    expect(bucketOf(RECENT)).toBe(bucketOf(RECENT + slack));
    expect(bucketOf(OLD)).toBe(bucketOf(OLD + slack));
    expected[bucketOf(RECENT)] = 5;
    expected[bucketOf(OLD)] = 3;
    expect(merged.buckets).toEqual(expected);
    for (const r of rows) expect(r.visible_at.getTime()).toBeGreaterThan(r.recorded_at.getTime() - 60_000);
  });

  it('puts the measured percentiles in the integration registry, saying they are measured and from what', async () => {
    const [status] = await measureIntegrations(h.rt.db, h.rt.dags.dags.values());
    expect(status!.sli).toMatchObject({ latencySource: 'measured', latencyMeasured: 8, latencyFrom: ['updated_at'] });
    // p50 is among the five recent changes, p99 among the three old ones: each within its bucket.
    const p50 = status!.sli.latencyP50Seconds!;
    const p99 = status!.sli.latencyP99Seconds!;
    expect(p50).toBeGreaterThanOrEqual(RECENT);
    expect(p50).toBeLessThanOrEqual(LATENCY_BOUNDS[bucketOf(RECENT)]!);
    expect(p99).toBeGreaterThanOrEqual(LATENCY_BOUNDS[bucketOf(OLD) - 1]!);
    expect(p99).toBeLessThanOrEqual(OLD + slack);
    const check = status!.slos.find((c) => c.slo === 'latency_p99')!;
    expect(check).toMatchObject({ met: true, measured: p99 });
    expect(check.summary).toContain('measured: 8 versions or filings, from updated_at');
  });

  it('exposes a Prometheus histogram per integration and entity, counted once across scrapes', async () => {
    const metrics = new StoreMetrics(h.rt, metricsSince);
    const labels = 'integration="hub-history-to-warehouse",entity="workers"';
    const line = (text: string, suffix: string) => text.split('\n').find((l) => l.startsWith(`hubflow_sync_latency_seconds${suffix}{${labels}`));
    for (let scrape = 0; scrape < 2; scrape++) {
      const text = await metrics.scrape();
      expect(text).toContain('# TYPE hubflow_sync_latency_seconds histogram');
      expect(line(text, '_count')).toBe(`hubflow_sync_latency_seconds_count{${labels}} 8`);
      expect(line(text, '_bucket')).toBe(`hubflow_sync_latency_seconds_bucket{${labels},le="1"} 0`);
      expect(text).toContain(`hubflow_sync_latency_seconds_bucket{${labels},le="${LATENCY_BOUNDS[bucketOf(RECENT)]}"} 5`);
      expect(text).toContain(`hubflow_sync_latency_seconds_bucket{${labels},le="${LATENCY_BOUNDS[bucketOf(OLD)]}"} 8`);
      expect(text).toContain(`hubflow_sync_latency_seconds_bucket{${labels},le="+Inf"} 8`);
    }
  });
});
