import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import { defineDag, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import hourly, { HOURLY_DELETES, nightlyHistoryWindow } from '../../dags/hub-hourly.ts';
import nightly from '../../dags/hub-nightly.ts';
import { hubDb, staging, warehouse } from '../../dags/resources.ts';
import { mutateHub } from '../../demo/mutate.ts';
import { seedHub } from '../../demo/seed.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { startWorker } from '../../server/processes.ts';
import { extractIncremental, extractIncrementalWith, listIncrementalScopes, loadHistory, reconcileHistory, PENDING_DELETES } from '../../tasks/hub-history.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

/*
 * The hourly DAG's tasks run by the engine after a nightly run. The DAG itself waits out the
 * nightly window by the wall clock, so the runs here use its tasks in a DAG without the window
 * (a test at 03:00 London would otherwise wait for 05:00); the real DAG's declaration is
 * checked apart.
 */
const tenants = task({ uses: { hub: hubDb, warehouse }, run: listIncrementalScopes });
const extract = task({ map: tenants, uses: { hub: hubDb, staging }, run: extractIncremental });
const load = task({ map: extract, trigger: 'all_done', uses: { warehouse, staging }, run: loadHistory });
const reconcile = task({ map: load, trigger: 'all_done', uses: { warehouse, staging }, run: reconcileHistory });
const hourlyTasks = defineDag({ id: 'hub-hourly-test', tasks: { tenants, extract, load, reconcile } });
const tenantsLater = task({ uses: { hub: hubDb, warehouse }, run: listIncrementalScopes });
const extractLater = task({ map: tenantsLater, uses: { hub: hubDb, staging }, run: extractIncrementalWith('nightly') });
const loadLater = task({ map: extractLater, trigger: 'all_done', uses: { warehouse, staging }, run: loadHistory });
const reconcileLater = task({ map: loadLater, trigger: 'all_done', uses: { warehouse, staging }, run: reconcileHistory });
const nightlyCadence = defineDag({
  id: 'hub-hourly-nightly-deletes',
  tasks: { tenants: tenantsLater, extract: extractLater, load: loadLater, reconcile: reconcileLater },
});

let rt: TestRuntime;
let worker: Executor;
let dir: string;
let hubSchema: string;
let whSchema: string;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'hubflow-hourly-'));
  const tag = path
    .basename(dir)
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(-8);
  hubSchema = `hh_${tag}`;
  whSchema = `wh_${tag}`;
  rt = await testRuntime(
    [nightly, hourlyTasks, nightlyCadence],
    { HUBFLOW_HUB_SCHEMA: hubSchema, HUBFLOW_WAREHOUSE_SCHEMA: whSchema, HUBFLOW_STAGING_DIR: dir },
    [hubDb, warehouse],
  );
  await seedHub(rt.connections.hub(), hubSchema, { tenants: 2, workers: 300, seed: 21 });
  worker = startWorker(rt, { concurrency: 4 });
}, 120_000);

afterAll(async () => {
  await worker?.close();
  for (const s of [hubSchema, whSchema]) await sql`drop schema if exists ${sql.id(s)} cascade`.execute(rt.db);
  await rt?.close();
  await rm(dir, { recursive: true, force: true });
}, 60_000);

async function run(dagId: string, at: string): Promise<number> {
  const r = await rt.engine.triggerRun(dagId, { logicalDate: new Date(at) });
  const done = await waitForRun(rt, r.id, 60_000);
  expect(done.state, JSON.stringify(await taskStates(rt, r.id))).toBe('success');
  return r.id;
}

const rowsOf = async (query: string) => (await sql<{ r: string }>`${sql.raw(query)}`.execute(rt.db)).rows.map((x) => x.r);

describe('the hourly incremental DAG', () => {
  it('after the nightly full snapshot, loads the changes of every tenant and leaves the warehouse equal to the hub', async () => {
    await run('hub-nightly', '2026-05-01T01:00:00Z');
    await mutateHub(rt.connections.hub(), hubSchema, { seed: 4, rate: 0.05 });
    const runId = await run('hub-hourly-test', '2026-05-02T10:30:00Z');
    const modes = await rowsOf(`select distinct load_mode as r from ${whSchema}.load_batches where run_id = ${runId} and tenant_id <> '_global'`);
    expect(modes).toEqual(['incremental']);
    const cols = ['tenant_id', 'worker_id', 'city', 'status', 'email', 'bank_account'];
    const warehouse = await rowsOf(
      `select concat_ws('|', ${cols.map((c) => `coalesce(${c}::text, '')`).join(', ')}) as r from ${whSchema}.workers_current order by 1`,
    );
    const hub = await rowsOf(`select concat_ws('|', ${cols.map((c) => `coalesce(${c}::text, '')`).join(', ')}) as r from ${hubSchema}.workers order by 1`);
    expect(warehouse).toEqual(hub);
    const checks = await rowsOf(`select status as r from ${rt.env.HUBFLOW_DB_SCHEMA}.reconciliations where run_id = ${runId}`);
    expect(checks.length).toBeGreaterThan(0);
    expect(new Set(checks)).toEqual(new Set(['ok']));
  });

  it("with the 'nightly' delete cadence, records a hub delete as pending in the reconciliation until the nightly run closes it", async () => {
    const [id] = await rowsOf(`select worker_id as r from ${hubSchema}.workers order by worker_id desc limit 1`);
    await rowsOf(`delete from ${hubSchema}.workers where worker_id = '${id}' returning worker_id as r`);
    const runId = await run('hub-hourly-nightly-deletes', '2026-05-02T11:30:00Z');
    expect(await rowsOf(`select worker_id as r from ${whSchema}.workers_current where worker_id = '${id}'`)).toEqual([id]);
    const fields = await rowsOf(
      `select concat_ws('|', c.status, c.severity, f.severity, f.mismatched) as r from ${rt.env.HUBFLOW_DB_SCHEMA}.reconciliations c
       join ${rt.env.HUBFLOW_DB_SCHEMA}.reconciliation_fields f on f.reconciliation_id = c.id
       where c.run_id = ${runId} and f.field = '${PENDING_DELETES}'`,
    );
    expect(fields).toEqual(['ok|low|low|1']);
    await run('hub-nightly', '2026-05-03T01:00:00Z');
    expect(await rowsOf(`select worker_id as r from ${whSchema}.workers_current where worker_id = '${id}'`)).toEqual([]);
  });

  it('is declared hourly as an incremental integration that waits out the nightly window', () => {
    expect(hourly.integration).toMatchObject({ pattern: 'incremental', target: 'warehouse' });
    expect(HOURLY_DELETES).toBe('nightly');
    for (const t of hourly.tasks.values()) expect(t.uses).toContain(nightlyHistoryWindow.id);
    const window = nightlyHistoryWindow.blackouts[0]!;
    expect(window.reason).toMatch(/hub-nightly/);
  });
});
