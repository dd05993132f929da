import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { loadConfig } from '../core/config.ts';
import { openHub, type HubDb } from '../hub/db.ts';
import { HUB_ENTITIES, type Entities } from '../hub/entities.ts';
import { mutateHub } from '../demo/mutate.ts';
import { seedHub } from '../demo/seed.ts';
import { applyScope, utcDayInterval } from '../tasks/history/apply.ts';
import { extractScope, type DeleteCadence, type ExtractResult } from '../tasks/history/extract.ts';
import { extractChanges } from '../tasks/history/incremental-extract.ts';
import { reconcileChanges } from '../tasks/history/incremental-reconcile.ts';
import { scopeWatermarks } from '../tasks/history/incremental.ts';
import type { Scope } from '../tasks/history/layout.ts';
import { reconcileScope } from '../tasks/history/reconcile.ts';
import type { Warehouse } from '../warehouse/contract.ts';
import { openPostgresWarehouse } from '../warehouse/postgres/dialect.ts';

/**
 * `npm run bench -- incremental`: incremental history runs against a full snapshot run of a
 * 1,000,000-worker hub, each after 1% of the workers changed (updates, hires, terminations,
 * hard deletes), with extract + load and reconciliation timed apart: with deletes looked for
 * every run (the key set compared, since the counts show deletes), with the 'nightly' cadence
 * (deletes left pending for the full snapshot), and every run again after 1% of updates and no
 * delete (the counts agree: no key set is compared). Tenants run
 * four at a time, as one worker runs them; figures are for the workers entity, as in the
 * history bench. Also times what a hub-side whole-scope aggregate costs (count and a checksum of
 * every key, and of every row), the figures an incremental reconciliation does without.
 *
 * Uses HUBFLOW_BENCH_DATABASE_URL (default: the local test database) for hub and warehouse,
 * in schemas it creates and drops.
 */

const URL = process.env.HUBFLOW_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const WORKERS = Number(process.env.HUBFLOW_BENCH_WORKERS ?? 1_000_000);
const TENANTS = 20;
const PARALLEL = 4;

const seconds = (t: number) => Number(((performance.now() - t) / 1000).toFixed(3));

async function inParallel<T, R>(items: T[], n: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array(items.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < items.length) {
        const i = next++;
        out[i] = await fn(items[i]!);
      }
    }),
  );
  return out;
}

export interface MeasureOptions {
  hub: HubDb;
  hubSchema: string;
  warehouse: Warehouse;
  /** A folder for the staged files (a subfolder per run is made in it). */
  stagingDir: string;
  runId: number;
  /** The UTC day the run's data interval starts (YYYY-MM-DD). */
  logicalDate: string;
  /** Default: the workers entity alone. */
  entities?: Entities;
  /** Scopes at once; default 4. */
  parallel?: number;
  /** An incremental run's delete cadence; default 'every-run'. */
  deletes?: DeleteCadence;
}

/**
 * One run of every scope of the hub, timed: extract, load, reconcile. `incremental` reads each
 * scope's watermark from the warehouse's ledger (a scope without one is extracted whole).
 * Throws when a reconciliation does not come out clean.
 */
export async function measureRun(opts: MeasureOptions & { mode: 'incremental' | 'full' }): Promise<Record<string, unknown>> {
  const deletes = opts.deletes ?? 'every-run';
  const entities = opts.entities ?? { workers: HUB_ENTITIES.workers! };
  const parallel = opts.parallel ?? PARALLEL;
  const compression = loadConfig().HUBFLOW_STAGING_COMPRESSION;
  const tenantEntity = Object.values(entities).find((e) => e.tenantColumn)!;
  const tenants = (
    await sql<{
      t: string;
    }>`select ${sql.id(tenantEntity.tenantColumn!)} as t from ${sql.id(opts.hubSchema, tenantEntity.table)} group by 1 order by count(*) desc, 1`.execute(
      opts.hub,
    )
  ).rows.map((r) => r.t);
  const scopes: Scope[] = [...(Object.values(entities).some((e) => !e.tenantColumn) ? [null] : []), ...tenants];
  const started = performance.now();
  const marks = opts.mode === 'incremental' ? await scopeWatermarks(opts.warehouse, entities, scopes) : new Map<Scope, null>();
  const extracts = await inParallel(scopes, parallel, (scope) => {
    const o = {
      hub: opts.hub,
      schema: opts.hubSchema,
      entities,
      scope,
      dir: path.join(opts.stagingDir, `run-${opts.runId}`, scope ?? '_global'),
      onRejects: async () => undefined,
      compression,
    };
    return opts.mode === 'incremental' ? extractChanges({ ...o, since: marks.get(scope) ?? null, deletes }) : extractScope(o);
  });
  const extractSeconds = seconds(started);
  let t = performance.now();
  const loads = await inParallel(extracts, parallel, (extract: ExtractResult) =>
    applyScope({
      warehouse: opts.warehouse,
      entities,
      extract,
      runId: opts.runId,
      interval: utcDayInterval(opts.logicalDate),
      attempt: `bench-${opts.runId}-${extract.scope}`,
    }),
  );
  const loadSeconds = seconds(t);
  t = performance.now();
  const recon = await inParallel(extracts, parallel, (extract: ExtractResult) => {
    const o = { warehouse: opts.warehouse, entities, scope: extract.scope, staged: extract.entities, attempt: `bench-${opts.runId}-${extract.scope}-rec` };
    return extract.since ? reconcileChanges({ ...o, snapshotAt: extract.snapshotAt, deletes: extract.deletes }) : reconcileScope(o);
  });
  const reconcileSeconds = seconds(t);
  const notOk = recon.flat().filter((r) => r.status !== 'ok');
  if (notOk.length) throw new Error(`run ${opts.runId} (${opts.mode}): ${notOk.length} reconciliations did not come out clean: ${JSON.stringify(notOk[0])}`);
  const staged = extracts.flatMap((e) => e.entities);
  const counted = loads.flat().filter((l) => l.deletes);
  return {
    mode: opts.mode === 'incremental' ? `incremental, deletes ${deletes}` : 'full',
    scopes: scopes.length,
    incrementalScopes: extracts.filter((e) => e.since).length,
    rowsStaged: staged.reduce((n, e) => n + e.staged, 0),
    keysStaged: staged.reduce((n, e) => n + (e.keys?.count ?? 0), 0),
    stagedMb: Number((staged.reduce((n, e) => n + e.bytes, 0) / 1e6).toFixed(1)),
    versionsWritten: loads.flat().reduce((n, l) => n + l.inserted + l.updated + l.deleted + l.resurrected, 0),
    deleted: loads.flat().reduce((n, l) => n + l.deleted, 0),
    ...(counted.length
      ? {
          keySetsCompared: counted.filter((l) => l.deletes!.keysCompared).length,
          keySetsSkippedByCount: counted.filter((l) => !l.deletes!.keysCompared && l.deletes!.counted === 0).length,
          pendingDeletes: recon.flat().reduce((n, r) => n + (r.pendingDeletes ?? 0), 0),
        }
      : {}),
    extractSeconds,
    loadSeconds,
    extractPlusLoadSeconds: Number((extractSeconds + loadSeconds).toFixed(3)),
    reconcileSeconds,
    recordsReconciled: recon.flat().reduce((n, r) => n + r.sourceCount, 0),
  };
}

/** One incremental run, timed (see measureRun): for benches that put it beside their own figures. */
export const measureIncremental = (opts: MeasureOptions) => measureRun({ ...opts, mode: 'incremental' });

/** What a hub-side aggregate over every worker costs: keys only (an index-only scan), and whole rows. */
async function hubAggregates(hub: HubDb, schema: string): Promise<Record<string, number>> {
  const table = sql.id(schema, 'workers');
  const time = async (q: ReturnType<typeof sql>) => {
    const t = performance.now();
    await q.execute(hub);
    return seconds(t);
  };
  return {
    countSeconds: await time(sql`select tenant_id, count(*) from ${table} group by 1`),
    keyChecksumSeconds: await time(sql`select tenant_id, count(*), sum(('x' || substr(md5(worker_id), 1, 15))::bit(60)::bigint) from ${table} group by 1`),
    rowChecksumSeconds: await time(sql`select tenant_id, count(*), sum(hashtextextended(t::text, 0)) from ${table} t group by 1`),
  };
}

export async function runIncrementalBench(): Promise<unknown> {
  const tag = randomUUID().replaceAll('-', '').slice(0, 8);
  const hubSchema = `bench_ihub_${tag}`;
  const whSchema = `bench_iwh_${tag}`;
  const hub = openHub(URL, PARALLEL + 1);
  const wh = openPostgresWarehouse(URL, whSchema);
  const stagingDir = await mkdtemp(path.join(os.tmpdir(), 'hubflow-bench-incr-'));
  try {
    let t = performance.now();
    await seedHub(hub, hubSchema, { tenants: TENANTS, workers: WORKERS, seed: 1 });
    const seedSeconds = seconds(t);
    await sql`create schema ${sql.id(whSchema)}`.execute(hub);
    await sql`vacuum analyze ${sql.id(hubSchema, 'workers')}`.execute(hub);
    await sql`checkpoint`.execute(hub).catch(() => undefined);
    const common = { hub, hubSchema, warehouse: wh, stagingDir };
    t = performance.now();
    const initial = await measureRun({ ...common, runId: 1, logicalDate: '2026-01-01', mode: 'full' });
    // The same share of changes before each timed run: 1% of the workers, different workers each time.
    const changed = (m: Awaited<ReturnType<typeof mutateHub>>) => m.updated + m.hired + m.terminated + m.deleted;
    const timed = async (seed: number, run: () => Promise<Record<string, unknown>>): Promise<Record<string, unknown>> => {
      const m = await mutateHub(hub, hubSchema, { seed, rate: 0.01 });
      return { changedWorkers: changed(m), hubDeletes: m.deleted, ...(await run()) };
    };
    const everyRun = await timed(1, () => measureIncremental({ ...common, runId: 2, logicalDate: '2026-01-02', deletes: 'every-run' }));
    const nightlyCadence = await timed(2, () => measureIncremental({ ...common, runId: 3, logicalDate: '2026-01-03', deletes: 'nightly' }));
    // The full snapshot closes the deletes the 'nightly' cadence left pending.
    const full = await timed(3, () => measureRun({ ...common, runId: 4, logicalDate: '2026-01-04', mode: 'full' }));
    // 1% of the workers updated and none deleted: the counts agree, no key set is compared.
    const t0 = performance.now();
    await sql`update ${sql.id(hubSchema, 'workers')} set city = city || '.', updated_at = now() where (hashtext(worker_id::text) & 1023) < 10`.execute(hub);
    const updateSeconds = seconds(t0);
    const noDeletes = { updateSeconds, ...(await measureIncremental({ ...common, runId: 5, logicalDate: '2026-01-05', deletes: 'every-run' })) };
    const ratio = (a: Record<string, unknown>) => ({
      extractPlusLoad: Number(((a.extractPlusLoadSeconds as number) / (full.extractPlusLoadSeconds as number)).toFixed(3)),
      reconcile: Number(((a.reconcileSeconds as number) / (full.reconcileSeconds as number)).toFixed(3)),
    });
    return {
      workers: WORKERS,
      tenants: TENANTS,
      parallelTenants: PARALLEL,
      seedSeconds,
      loadAverage: os.loadavg().map((x) => Number(x.toFixed(2))),
      initialFull: initial,
      incrementalEveryRun: everyRun,
      incrementalNightlyCadence: nightlyCadence,
      incrementalEveryRunNoDeletes: noDeletes,
      full,
      vsFull: { everyRun: ratio(everyRun), nightlyCadence: ratio(nightlyCadence), everyRunNoDeletes: ratio(noDeletes) },
      hubAggregates: await hubAggregates(hub, hubSchema),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      targets: { incrementalExtractPlusLoadSeconds: 1, incrementalReconcileSeconds: 2 },
    };
  } finally {
    await sql`drop schema if exists ${sql.id(hubSchema)} cascade`.execute(hub).catch(() => undefined);
    await sql`drop schema if exists ${sql.id(whSchema)} cascade`.execute(hub).catch(() => undefined);
    await wh.close();
    await hub.destroy();
    await rm(stagingDir, { recursive: true, force: true });
  }
}
