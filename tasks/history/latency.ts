import type { TaskContext } from 'hubflow';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import type { Entities } from '../../hub/entities.ts';
import { LATENCY_BOUNDS, type LatencyHistogram, type LatencyRecord } from '../../core/latency-histogram.ts';
import type { EntityLoad } from './apply.ts';
import { ledgerTenant, UPDATED_FIELD, type Scope } from './layout.ts';
import { historyTable, LEDGER } from './sql.ts';

/**
 * The sync latency of one committed load, measured in the warehouse: for every version the load
 * wrote (run id, scope, valid_from after the previous snapshot), the time from the hub change,
 * the row's `updated_at` as staged (the snapshot carries no commit time), to the instant the
 * load's COMMIT had returned. That instant is read from the warehouse's clock by the first
 * statement after the commit, so it is at or after the moment the versions became visible.
 *
 * Left out, and why: tombstones (the hub records no time for a delete), rows with no
 * `updated_at`, and an entity's first load into a scope (a backfill of history, not a sync: its
 * versions are as old as the hub). Each bucket is counted by comparing the column with a
 * timestamp literal, so the same SQL runs on every warehouse dialect.
 */

export interface LoadLatencyInput {
  warehouse: Warehouse;
  entities: Entities;
  scope: Scope;
  runId: number;
  snapshotAt: string;
  loads: readonly EntityLoad[];
}

/**
 * Measures a committed load and keeps the histograms with the run. Best effort: the versions are
 * committed, and a retry of the load would only find them applied and measure nothing, so a
 * failure here is a warning, not a failed load.
 */
export async function recordLoadLatency(
  ctx: TaskContext<unknown, { warehouse: Warehouse }>,
  load: Omit<LoadLatencyInput, 'warehouse' | 'runId'>,
): Promise<void> {
  try {
    await ctx.records.syncLatency(await measureLoadLatency({ ...load, warehouse: ctx.resources.warehouse, runId: ctx.runId }));
  } catch (err) {
    ctx.log.warn({ err, scope: load.scope }, `sync latency of this load not recorded: ${(err as Error).message}`);
  }
}

const isoMinus = (visibleMs: number, seconds: number) => `${new Date(visibleMs - seconds * 1000).toISOString().slice(0, 23)}000Z`;
const msOf = (iso: string) => Date.parse(iso);

export async function measureLoadLatency(input: LoadLatencyInput): Promise<LatencyRecord[]> {
  const names = input.loads.filter((l) => l.status === 'loaded' && l.inserted + l.updated + l.resurrected > 0).map((l) => l.entity);
  if (!names.length) return [];
  const wh = input.warehouse;
  const d = wh.dialect;
  return wh.session(async (s) => {
    const [now] = await s.query<{ at: string }>(`select ${d.isoText('current_timestamp')} as at`);
    const visibleAt = now!.at;
    const tenant = ledgerTenant(input.scope);
    const ledger = await s.query<{ entity: string; prev: string | null }>(
      `select entity, ${d.isoText('prev_snapshot_at')} as prev from ${wh.table(LEDGER)}
       where tenant_id = ${d.text(tenant)} and run_id = ${input.runId} and snapshot_at = ${d.timestamp(input.snapshotAt)}
         and entity in (${names.map(d.text).join(', ')})`,
    );
    const out: LatencyRecord[] = [];
    for (const { entity, prev } of ledger) {
      const e = input.entities[entity];
      if (!e || prev === null) continue;
      const histogram = await entityHistogram(s, wh, {
        table: wh.table(historyTable(e)),
        where: `h.run_id = ${input.runId}${e.tenantColumn && input.scope !== null ? ` and h.tenant_id = ${d.text(input.scope)}` : ''} and h.valid_from > ${d.timestamp(prev)}`,
        visibleAt,
      });
      if (histogram) out.push({ kind: 'version', entity, scope: input.scope, source: 'updated_at', visibleAt: new Date(msOf(visibleAt)), histogram });
    }
    return out;
  });
}

/** Count, sum, extremes and bucket counts of `visibleAt - source_updated_at` over the new, live versions `where` selects. */
async function entityHistogram(s: WarehouseSession, wh: Warehouse, q: { table: string; where: string; visibleAt: string }): Promise<LatencyHistogram | null> {
  const d = wh.dialect;
  const col = `h.${UPDATED_FIELD}`;
  const visibleMs = msOf(q.visibleAt);
  const visible = d.timestamp(q.visibleAt);
  // "at most b seconds late" is "changed at or after visible - b": a comparison every dialect spells alike.
  const within = LATENCY_BOUNDS.map((b, i) => `sum(case when ${col} >= ${d.timestamp(isoMinus(visibleMs, b))} then 1 else 0 end) as b${i}`);
  // Seconds before the visible instant, summed relative to it so the sum stays small and exact;
  // a hub clock ahead of the warehouse's counts as no latency.
  const late = `extract(epoch from ${visible}) - extract(epoch from case when ${col} > ${visible} then ${visible} else ${col} end)`;
  const [row] = await s.query<Record<string, unknown>>(
    `select count(*) as n, sum(${late}) as total, ${d.isoText(`min(${col})`)} as oldest, ${d.isoText(`max(${col})`)} as newest, ${within.join(', ')}
     from ${q.table} h where ${q.where} and not h.is_deleted and ${col} is not null`,
  );
  const count = Number(row?.n ?? 0);
  if (!row || count === 0) return null;
  const cumulative = LATENCY_BOUNDS.map((_, i) => Number(row[`b${i}`] ?? 0));
  const buckets = [...cumulative.map((c, i) => c - (i ? cumulative[i - 1]! : 0)), count - cumulative.at(-1)!];
  const secondsBefore = (iso: unknown) => Math.max(0, (visibleMs - msOf(String(iso))) / 1000);
  return {
    count,
    sumSeconds: Number(row.total ?? 0),
    minSeconds: secondsBefore(row.newest),
    maxSeconds: secondsBefore(row.oldest),
    buckets,
  };
}
