import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import nightly from '../../dags/hub-nightly.ts';
import { hubDb, warehouse } from '../../dags/resources.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { HUB_ENTITIES, type Entity } from '../../hub/entities.ts';
import { seedHub } from '../../demo/seed.ts';
import { startWorker } from '../../server/processes.ts';
import { identityFields, tracked } from '../../tasks/history/layout.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

/** A runtime with the nightly history DAG, its own hub and warehouse schemas and staging folder. */
export interface HistoryHarness {
  rt: TestRuntime;
  hubSchema: string;
  whSchema: string;
  staging: string;
  worker: Executor | undefined;
  close(): Promise<void>;
}

export async function historyHarness(
  options: { tenants?: number; workers?: number; seed?: number; worker?: boolean; env?: Record<string, string> } = {},
): Promise<HistoryHarness> {
  const staging = await mkdtemp(path.join(os.tmpdir(), 'hubflow-staging-'));
  const tag = path
    .basename(staging)
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(-8);
  const hubSchema = `h_${tag}`;
  const whSchema = `w_${tag}`;
  const rt = await testRuntime([nightly], { HUBFLOW_HUB_SCHEMA: hubSchema, HUBFLOW_WAREHOUSE_SCHEMA: whSchema, HUBFLOW_STAGING_DIR: staging, ...options.env }, [
    hubDb,
    warehouse,
  ]);
  await seedHub(rt.connections.hub(), hubSchema, { tenants: options.tenants ?? 3, workers: options.workers ?? 300, seed: options.seed ?? 11 });
  const worker = options.worker === false ? undefined : startWorker(rt, { concurrency: 4 });
  return {
    rt,
    hubSchema,
    whSchema,
    staging,
    worker,
    async close() {
      await worker?.close();
      await sql`drop schema if exists ${sql.id(hubSchema)} cascade`.execute(rt.db);
      await sql`drop schema if exists ${sql.id(whSchema)} cascade`.execute(rt.db);
      await rt.close();
      await rm(staging, { recursive: true, force: true });
    },
  };
}

/** The nightly run of `day`: triggered at its 02:00 Europe/London tick, so it covers the interval that starts that day. */
export async function runNight(h: HistoryHarness, day: string): Promise<{ id: number; state: string }> {
  const at = new Date(`${day}T02:00:00Z`);
  const londonHour = Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Europe/London', hour: '2-digit', hourCycle: 'h23' }).format(at));
  at.setUTCHours(at.getUTCHours() - (londonHour - 2));
  const run = await h.rt.engine.triggerRun('hub-nightly', { logicalDate: at });
  return waitForRun(h.rt, run.id, 45_000);
}

const columnsOf = (e: Entity) => [...identityFields(e), ...tracked(e)];

/** An entity's rows in the hub now, as text, keyed and sorted: what as-of must reproduce. */
export async function hubState(h: HistoryHarness, e: Entity, tenant?: string): Promise<string[]> {
  const cols = columnsOf(e).map((f) => `${sql.id(f.column).compile(h.rt.db).sql}::text`);
  const where = tenant !== undefined && e.tenantColumn ? sql` where ${sql.id(e.tenantColumn)} = ${tenant}` : sql``;
  const { rows } = await sql<{
    r: string;
  }>`select concat_ws('|', ${sql.raw(cols.map((c) => `coalesce(${c}, '∅')`).join(', '))}) as r from ${sql.raw(`${h.hubSchema}.${e.table}`)}${where} order by 1`.execute(
    h.rt.db,
  );
  return rows.map((r) => r.r);
}

/** The warehouse's as-of view of an entity at an instant, in the same text form. */
export async function asOf(h: HistoryHarness, e: Entity, at: string, tenant?: string): Promise<string[]> {
  const cols = columnsOf(e).map((f) => `${sql.id(f.name).compile(h.rt.db).sql}::text`);
  const scoped = tenant !== undefined && e.tenantColumn ? sql`tenant_id = ${tenant} and ` : sql``;
  const { rows } = await sql<{ r: string }>`select concat_ws('|', ${sql.raw(cols.map((c) => `coalesce(${c}, '∅')`).join(', '))}) as r
    from ${sql.raw(`${h.whSchema}.${e.name}_history`)}
    where ${scoped}valid_from <= ${at}::timestamptz and (valid_to is null or valid_to > ${at}::timestamptz) and not is_deleted order by 1`.execute(h.rt.db);
  return rows.map((r) => r.r);
}

export const ENTITIES = Object.values(HUB_ENTITIES);
