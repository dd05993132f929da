import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { openHub, type HubDb } from '../../hub/db.ts';
import { HUB_ENTITIES, type Entity } from '../../hub/entities.ts';
import { seedHub } from '../../demo/seed.ts';
import { applyScope, utcDayInterval, type EntityLoad } from '../../tasks/history/apply.ts';
import { extractScope, type DeleteCadence, type ExtractResult } from '../../tasks/history/extract.ts';
import { extractChanges } from '../../tasks/history/incremental-extract.ts';
import { reconcileChanges } from '../../tasks/history/incremental-reconcile.ts';
import { scopeWatermarks } from '../../tasks/history/incremental.ts';
import { identityFields, tracked, type Scope } from '../../tasks/history/layout.ts';
import { reconcileScope, type EntityReconciliation } from '../../tasks/history/reconcile.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import { TEST_DATABASE_URL } from '../support.ts';

/** A seeded hub and two warehouses: one loaded incrementally, one by full snapshots, run by run. */
export interface IncrementalHarness {
  hub: HubDb;
  hubSchema: string;
  incr: Warehouse;
  full: Warehouse;
  tenants: string[];
  close(): Promise<void>;
}

export const entities = HUB_ENTITIES;

export async function incrementalHarness(tenants = 2, workers = 400): Promise<IncrementalHarness & { staging: string }> {
  const staging = await mkdtemp(path.join(os.tmpdir(), 'hubflow-incr-'));
  const tag = path
    .basename(staging)
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(-8);
  const hubSchema = `hi_${tag}`;
  const hub = openHub(TEST_DATABASE_URL, 3);
  await seedHub(hub, hubSchema, { tenants, workers, seed: 5 });
  const names = (await sql<{ t: string }>`select distinct tenant_id as t from ${sql.raw(`${hubSchema}.workers`)} order by 1`.execute(hub)).rows.map((r) => r.t);
  const incr = openPostgresWarehouse(TEST_DATABASE_URL, `wi_${tag}`);
  const full = openPostgresWarehouse(TEST_DATABASE_URL, `wf_${tag}`);
  return {
    hub,
    hubSchema,
    incr,
    full,
    tenants: names,
    staging,
    async close() {
      for (const s of [hubSchema, `wi_${tag}`, `wf_${tag}`]) await sql`drop schema if exists ${sql.id(s)} cascade`.execute(hub);
      await incr.close();
      await full.close();
      await hub.destroy();
      await rm(staging, { recursive: true, force: true });
    },
  };
}

export interface ScopeRun {
  extract: ExtractResult;
  loads: EntityLoad[];
  reconciliations: EntityReconciliation[];
}

/** One run over every scope: extract (incremental where the ledger has a watermark, when asked), load, reconcile. */
export async function runAll(
  h: IncrementalHarness & { staging: string },
  wh: Warehouse,
  o: { runId: number; day: string; incremental: boolean; deletes?: DeleteCadence },
): Promise<ScopeRun[]> {
  const scopes: Scope[] = [null, ...h.tenants];
  const marks = o.incremental ? await scopeWatermarks(wh, entities, scopes) : new Map<Scope, null>();
  const out: ScopeRun[] = [];
  for (const scope of scopes) {
    const extract = await extractOne(h, scope, o.runId, o.incremental ? (marks.get(scope) ?? null) : undefined, o.deletes);
    out.push(await loadAndReconcile(wh, extract, o));
  }
  return out;
}

export async function extractOne(
  h: IncrementalHarness & { staging: string },
  scope: Scope,
  runId: number,
  since: ExtractResult['since'] | null | undefined,
  deletes?: DeleteCadence,
) {
  const opts = {
    hub: h.hub,
    schema: h.hubSchema,
    entities,
    scope,
    dir: path.join(h.staging, `run-${runId}-${since === undefined ? 'full' : 'incr'}`, scope ?? '_global'),
    onRejects: async () => undefined,
    compression: 'none' as const,
  };
  return since === undefined ? extractScope(opts) : extractChanges({ ...opts, since, deletes });
}

export async function loadAndReconcile(wh: Warehouse, extract: ExtractResult, o: { runId: number; day: string }): Promise<ScopeRun> {
  const attempt = `t${o.runId}-${extract.scope ?? 'g'}-${Math.random().toString(36).slice(2, 8)}`;
  const loads = await applyScope({ warehouse: wh, entities, extract, runId: o.runId, interval: utcDayInterval(o.day), attempt });
  return { extract, loads, reconciliations: await reconcile(wh, extract, attempt) };
}

export async function reconcile(wh: Warehouse, extract: ExtractResult, attempt: string): Promise<EntityReconciliation[]> {
  const opts = { warehouse: wh, entities, scope: extract.scope, staged: extract.entities.filter((e) => e.file !== null), attempt: `${attempt}-rec` };
  return extract.since ? reconcileChanges({ ...opts, snapshotAt: extract.snapshotAt, deletes: extract.deletes }) : reconcileScope(opts);
}

const columnsOf = (e: Entity) => [...identityFields(e), ...tracked(e)];

/** An entity's rows in the hub now, as text, sorted. */
export async function hubRows(h: IncrementalHarness, e: Entity): Promise<string[]> {
  const cols = columnsOf(e).map((f) => `coalesce(${sql.id(f.column).compile(h.hub).sql}::text, '∅')`);
  const { rows } = await sql<{
    r: string;
  }>`select concat_ws('|', ${sql.raw(cols.join(', '))}) as r from ${sql.raw(`${h.hubSchema}.${e.table}`)} order by 1`.execute(h.hub);
  return rows.map((r) => r.r);
}

/** The warehouse's as-of view of an entity at an instant, in the same form. */
export async function asOf(h: IncrementalHarness, wh: Warehouse, e: Entity, at: string): Promise<string[]> {
  const cols = columnsOf(e).map((f) => `coalesce(${sql.id(f.name).compile(h.hub).sql}::text, '∅')`);
  const { rows } = await sql<{ r: string }>`select concat_ws('|', ${sql.raw(cols.join(', '))}) as r from ${sql.raw(wh.table(`${e.name}_history`))}
    where valid_from <= ${at}::timestamptz and (valid_to is null or valid_to > ${at}::timestamptz) and not is_deleted order by 1`.execute(h.hub);
  return rows.map((r) => r.r);
}
