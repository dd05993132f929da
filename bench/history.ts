import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { sql } from 'kysely';
import { to as copyTo } from 'pg-copy-streams';
import { loadConfig } from '../core/config.ts';
import { openPostgresWarehouse } from '../warehouse/postgres/dialect.ts';
import { poolOf } from '../core/pg.ts';
import { openHub } from '../hub/db.ts';
import { HUB_ENTITIES } from '../hub/entities.ts';
import { mutateHub } from '../demo/mutate.ts';
import { seedHub } from '../demo/seed.ts';
import { applyScope, utcDayInterval } from '../tasks/history/apply.ts';
import { extractScope, type ExtractResult } from '../tasks/history/extract.ts';
import { reconcileScope } from '../tasks/history/reconcile.ts';

/**
 * `npm run bench -- history`: the nightly history path for 1,000,000 workers. An initial
 * extract + load (empty history), then a day with 1% of the workers changed, each reconciled,
 * against a bare `COPY workers TO STDOUT` measured in the same run. Tenants run four at a time,
 * as one worker runs them. Figures are for the workers entity.
 *
 * Staged files are compressed as HUBFLOW_STAGING_COMPRESSION says (default none, as the
 * PostgreSQL warehouse stages them).
 *
 * Uses HUBFLOW_BENCH_DATABASE_URL (default: the local test database) for hub and warehouse,
 * in schemas it creates and drops.
 */

const URL = process.env.HUBFLOW_BENCH_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const WORKERS = Number(process.env.HUBFLOW_BENCH_WORKERS ?? 1_000_000);
const TENANTS = 20;
// As one worker runs the nightly DAG: its hub pool and the warehouse resource both allow four
// scopes at a time (openHub's pool of 4, `warehouse` with 4 slots).
const PARALLEL = 4;
const entities = { workers: HUB_ENTITIES.workers! };
const compression = loadConfig().HUBFLOW_STAGING_COMPRESSION;

const seconds = (t: number) => Number(((performance.now() - t) / 1000).toFixed(2));
const perSecond = (rows: number, s: number) => Math.round(rows / s);

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

export async function runHistoryBench(): Promise<unknown> {
  const tag = randomUUID().replaceAll('-', '').slice(0, 8);
  const hubSchema = `bench_hub_${tag}`;
  const whSchema = `bench_wh_${tag}`;
  const hub = openHub(URL, PARALLEL + 1);
  const wh = openPostgresWarehouse(URL, whSchema);
  const staging = await mkdtemp(path.join(os.tmpdir(), 'hubflow-bench-'));
  try {
    let t = performance.now();
    await seedHub(hub, hubSchema, { tenants: TENANTS, workers: WORKERS, seed: 1 });
    const seedSeconds = seconds(t);
    await sql`create schema ${sql.id(whSchema)}`.execute(hub);
    await sql`vacuum analyze ${sql.raw(`${hubSchema}.workers`)}`.execute(hub);
    // The seed's dirty pages are written out now, not while the extract is being timed. A role
    // that may not checkpoint (it needs pg_checkpoint) measures without.
    await sql`checkpoint`.execute(hub).catch(() => undefined);
    // Largest first, as the nightly DAG lists them.
    const tenants = (
      await sql<{ t: string }>`select tenant_id as t from ${sql.raw(`${hubSchema}.workers`)} group by 1 order by count(*) desc, 1`.execute(hub)
    ).rows.map((r) => r.t);

    const bareCopy = async () => {
      const client = await poolOf(hub).connect();
      try {
        const started = performance.now();
        await pipeline(client.query(copyTo(`copy ${hubSchema}.workers to stdout`)), new Writable({ write: (_c, _e, cb) => cb() }));
        return seconds(started);
      } finally {
        client.release();
      }
    };

    const day = async (label: string, logicalDate: string, runId: number) => {
      const started = performance.now();
      const extracts = await inParallel(tenants, PARALLEL, (tenant) =>
        extractScope({
          hub,
          schema: hubSchema,
          entities,
          scope: tenant,
          dir: path.join(staging, label, tenant),
          onRejects: async () => undefined,
          compression,
        }),
      );
      const extractSeconds = seconds(started);
      t = performance.now();
      const loads = await inParallel(extracts, PARALLEL, (extract: ExtractResult) =>
        applyScope({ warehouse: wh, entities, extract, runId, interval: utcDayInterval(logicalDate), attempt: `bench-${label}-${extract.scope}` }),
      );
      const loadSeconds = seconds(t);
      t = performance.now();
      const recon = await inParallel(extracts, PARALLEL, (extract: ExtractResult) =>
        reconcileScope({ warehouse: wh, entities, scope: extract.scope, staged: extract.entities, attempt: `bench-${label}-${extract.scope}-rec` }),
      );
      const reconcileSeconds = seconds(t);
      const rows = extracts.reduce((n, e) => n + e.entities[0]!.staged, 0);
      const changed = loads.flat().reduce((n, l) => n + l.inserted + l.updated + l.deleted + l.resurrected, 0);
      const notOk = recon.flat().filter((r) => r.status !== 'ok').length;
      if (notOk) throw new Error(`${label}: ${notOk} reconciliations did not come out clean`);
      return {
        rows,
        versionsWritten: changed,
        extractSeconds,
        extractRowsPerSecond: perSecond(rows, extractSeconds),
        loadSeconds,
        loadRowsPerSecond: perSecond(rows, loadSeconds),
        extractPlusLoadSeconds: Number((extractSeconds + loadSeconds).toFixed(2)),
        reconcileSeconds,
      };
    };

    const bareBefore = await bareCopy();
    const initial = await day('initial', '2026-01-01', 1);
    const mutation = await mutateHub(hub, hubSchema, { seed: 1, rate: 0.01 });
    const changeDay = await day('day2', '2026-01-02', 2);
    const bareAfter = await bareCopy();
    const bare = Math.min(bareBefore, bareAfter);
    return {
      workers: WORKERS,
      tenants: TENANTS,
      parallelTenants: PARALLEL,
      stagingCompression: compression,
      seedSeconds,
      bareCopySeconds: bare,
      bareCopyRuns: [bareBefore, bareAfter],
      bareCopyRowsPerSecond: perSecond(WORKERS, bare),
      initial: { ...initial, extractVsBareCopy: Number((initial.extractSeconds / bare).toFixed(2)) },
      changeDay: {
        changedWorkers: mutation.updated + mutation.hired + mutation.terminated + mutation.deleted,
        ...changeDay,
        extractVsBareCopy: Number((changeDay.extractSeconds / bare).toFixed(2)),
      },
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      targets: { initialExtractPlusLoadSeconds: 60, changeDayExtractPlusLoadSeconds: 15, peakRssMb: 300, extractVsBareCopy: 2 },
    };
  } finally {
    await sql`drop schema if exists ${sql.id(hubSchema)} cascade`.execute(hub).catch(() => undefined);
    await sql`drop schema if exists ${sql.id(whSchema)} cascade`.execute(hub).catch(() => undefined);
    await wh.close();
    await hub.destroy();
    await rm(staging, { recursive: true, force: true });
  }
}
