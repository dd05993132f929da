import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import hubCdc from '../../dags/hub-cdc.ts';
import { hubDb, warehouse } from '../../dags/resources.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { sleep, startConsumer, type RunningConsumer } from './consumer.ts';
import { startWriters, type Writer } from './load.ts';
import { execSql, startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
import { HUB_SCHEMA, hubflow, seedDemoHub } from './support.ts';

/**
 * The hub-cdc DAG run by the engine against a private hub with wal_level = logical: skipped
 * before CDC is set up; with the consumer streaming while writers keep committing, its
 * reconciliation matches every entity and tenant; a planted corruption of the warehouse fails
 * it, naming the entity, tenant and keys.
 */

let pgs: PrivatePostgres;
let rt: TestRuntime;
let worker: Executor;
let consumer: RunningConsumer | undefined;
let writers: Writer | undefined;
let consumerEnv: Record<string, string>;

beforeAll(async () => {
  pgs = await startPrivatePostgres({ wal_level: 'logical' });
  await seedDemoHub(pgs.url, { tenants: 2, workers: 2000, fullIdentity: true });
  consumerEnv = { HUBFLOW_HUB_URL: pgs.url, HUBFLOW_DATABASE_URL: pgs.url, HUBFLOW_WAREHOUSE_SCHEMA: 'wh', HUBFLOW_LOG_LEVEL: 'info' };
  rt = await testRuntime(
    [hubCdc],
    { HUBFLOW_HUB_URL: pgs.url, HUBFLOW_HUB_SCHEMA: HUB_SCHEMA, HUBFLOW_WAREHOUSE_URL: pgs.url, HUBFLOW_WAREHOUSE_SCHEMA: 'wh' },
    [hubDb, warehouse],
  );
  worker = startWorker(rt, { concurrency: 2 });
}, 120_000);

afterAll(async () => {
  await writers?.stop();
  consumer?.child.kill('SIGTERM');
  await consumer?.exited;
  await worker?.close();
  await rt?.close();
  await pgs?.stop();
}, 60_000);

async function runDag(conf: Record<string, unknown> = {}) {
  const r = await rt.engine.triggerRun('hub-cdc', { logicalDate: new Date(), conf });
  const done = await waitForRun(rt, r.id, 120_000);
  const ti = await rt.db.selectFrom('task_instances').select(['state', 'error']).where('run_id', '=', r.id).executeTakeFirstOrThrow();
  const recs = await rt.db.selectFrom('reconciliations').selectAll().where('run_id', '=', r.id).orderBy('id').execute();
  return { id: r.id, state: done.state, states: await taskStates(rt, r.id), error: JSON.stringify(ti.error), recs };
}

describe('the nightly proof of the CDC-built history', () => {
  it('skips itself, saying how to set CDC up, where it is not set up', async () => {
    const run = await runDag();
    expect(run.states).toEqual({ reconcile: 'skipped' });
    expect(run.error).toContain('CDC is not set up');
    expect(run.error).toContain('hubflow cdc setup');
    expect(run.recs).toEqual([]);
  });

  it('matches the hub snapshot entity by entity and tenant by tenant while writes and the stream go on', async () => {
    const setup = hubflow(consumerEnv, 'cdc', 'setup', '--json');
    expect(setup.status, setup.stderr).toBe(0);
    consumer = await startConsumer(consumerEnv);
    writers = await startWriters(pgs.url, 2);
    await sleep(1500);
    const run = await runDag();
    expect(run.state, run.error).toBe('success');
    expect(run.recs.length).toBeGreaterThanOrEqual(5);
    expect(run.recs.filter((r) => r.status !== 'ok')).toEqual([]);
    const workers = run.recs.filter((r) => r.entity === 'workers');
    expect(workers.map((r) => r.tenant_id)).toHaveLength(2);
    for (const r of run.recs) expect([r.current_count, r.current_sum]).toEqual([r.source_count, r.source_sum]);
    expect(workers.reduce((n, r) => n + r.source_count, 0)).toBeGreaterThan(1900);
    // Both moved: keys changed after the hub snapshot were compared as of it.
    const logs = await rt.db
      .selectFrom('task_logs')
      .innerJoin('task_instances', 'task_instances.id', 'task_logs.ti_id')
      .select('line')
      .where('task_instances.run_id', '=', run.id)
      .execute();
    const line = logs.map((l) => l.line).find((l) => l.includes('CDC history reconciled'));
    expect(line, JSON.stringify(logs)).toMatch(/"moving":[1-9]/);
    // The stream's latency went to the integration the DAG declares.
    const latency = await execSql(pgs.url, `select count(*)::int as n from hubflow.sync_latency where integration = 'hub-history-cdc'`);
    expect((latency[0]!.rows[0] as { n: number }).n).toBeGreaterThan(0);
  }, 180_000);

  it('fails on a planted corruption of the warehouse, naming the entity, tenant and keys', async () => {
    // Writers stopped so none of them rewrites a planted row; the consumer keeps streaming.
    await writers?.stop();
    writers = undefined;
    // A current reference row deleted, and five workers' current versions replaced by other content.
    await execSql(
      pgs.url,
      `delete from wh.currencies_history where is_current and code = (select min(code) from wh.currencies_history where is_current and not is_deleted)`,
      `update wh.workers_history set city = 'Nowhere', row_hash = repeat('0', 64)
        where is_current and not is_deleted and (tenant_id, worker_id) in
          (select tenant_id, worker_id from wh.workers_history where is_current and not is_deleted and worker_id not like 'N%' order by tenant_id, worker_id limit 5)`,
    );
    const [deleted] = await execSql(pgs.url, `select min(code) as code from hub.currencies where code not in (select code from wh.currencies_current)`);
    const code = (deleted!.rows[0] as { code: string }).code;
    const run = await runDag();
    expect(run.state).toBe('failed');
    expect(run.error).toContain(`currencies/_global: 1 missing in warehouse (${code})`);
    expect(run.error).toMatch(/workers\/[^:]+: 0 missing in warehouse, 0 missing in hub, 5 differing/);
    const failed = run.recs.filter((r) => r.status === 'failed').map((r) => r.entity);
    expect(failed.sort()).toEqual(['currencies', 'workers']);
  }, 180_000);

  it('stops waiting with a clear error when the consumer does not catch up', async () => {
    consumer!.child.kill('SIGTERM');
    await consumer!.exited;
    consumer = undefined;
    await execSql(pgs.url, `update ${HUB_SCHEMA}.workers set city = 'Elsewhere' where worker_id = (select min(worker_id) from ${HUB_SCHEMA}.workers)`);
    const r = await rt.engine.triggerRun('hub-cdc', { logicalDate: new Date(), conf: { catchUpSeconds: 2 } });
    const deadline = Date.now() + 60_000;
    let error = '';
    while (!error.includes('did not catch up') && Date.now() < deadline) {
      await sleep(200);
      const ti = await rt.db.selectFrom('task_instances').select(['error']).where('run_id', '=', r.id).executeTakeFirst();
      error = JSON.stringify(ti?.error ?? '');
    }
    expect(error).toContain('the CDC consumer did not catch up with the hub within 2 s');
    expect(error).toContain('is hubflow cdc run running?');
    await rt.engine.cancelRuns({ runIds: [r.id], reason: 'the test is over' });
  }, 90_000);
});
