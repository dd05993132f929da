import { afterAll, expect, it } from 'vitest';
import nightly from '../../dags/hub-nightly.ts';
import { hubDb, warehouse } from '../../dags/resources.ts';
import { startWorker } from '../../server/processes.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let worker: Executor | undefined;
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

it('a nightly run against a hub that is not there fails at once, saying what to do', async () => {
  rt = await testRuntime([nightly], { HUBFLOW_HUB_SCHEMA: 'no_such_hub_schema' }, [hubDb, warehouse]);
  worker = startWorker(rt, { concurrency: 2 });
  const run = await rt.engine.triggerRun('hub-nightly');
  expect((await waitForRun(rt, run.id)).state).toBe('failed');
  const tenants = await rt.db
    .selectFrom('task_instances')
    .select(['state', 'try_number', 'error'])
    .where('run_id', '=', run.id)
    .where('task_id', '=', 'tenants')
    .executeTakeFirstOrThrow();
  expect(tenants).toMatchObject({ state: 'failed', try_number: 1 });
  expect(JSON.stringify(tenants.error)).toContain("in schema 'no_such_hub_schema': seed the demo hub with `hubflow hub seed");
});
