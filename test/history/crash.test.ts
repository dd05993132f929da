import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import type { Scheduler } from '../../server/engine/scheduler.ts';
import { startScheduler, startWorker } from '../../server/processes.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { waitForRun } from '../support.ts';
import { historyHarness, type HistoryHarness } from './support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

let h: HistoryHarness | undefined;
let child: ChildProcess | undefined;
let worker: Executor | undefined;
let scheduler: Scheduler | undefined;

afterAll(async () => {
  child?.kill('SIGKILL');
  await worker?.close();
  await scheduler?.stop();
  await h?.close();
}, 120_000);

async function until(check: () => Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe('a worker killed in the middle of a load', () => {
  it('leaves no partial versions, and the retry loads everything once', async () => {
    h = await historyHarness({ tenants: 1, workers: 20_000, seed: 3, worker: false, env: { HUBFLOW_LOCK_MS: '1000', HUBFLOW_SWEEP_INTERVAL_MS: '500' } });
    const rt = h.rt;
    child = spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), 'worker'], { env: { ...process.env, ...rt.env }, stdio: 'ignore' });
    const run = await rt.engine.triggerRun('hub-nightly', { logicalDate: new Date('2026-04-01T02:00:00Z') });
    // Inside the apply's transaction, once it has written: the moment a crash would leave half a
    // load. The session is recognised by this test's warehouse schema (other tests load too).
    let pid = 0;
    await until(
      async () => {
        const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity
          where application_name = 'hubflow-warehouse' and backend_xid is not null and query ilike 'insert into%' and position(${h!.whSchema} in query) > 0`.execute(
          rt.db,
        );
        pid = rows[0]?.pid ?? 0;
        return pid > 0;
      },
      60_000,
      'the load to be writing history',
    );
    child.kill('SIGKILL');
    const wh = (t: string) => sql.raw(`${h!.whSchema}.${t}`);
    // Whatever the dead worker wrote is rolled back with its session: no version, no ledger row.
    await until(async () => (await sql`select 1 from pg_stat_activity where pid = ${pid}`.execute(rt.db)).rows.length === 0, 60_000, 'the dead session to end');
    expect((await sql<{ n: number }>`select count(*)::int as n from ${wh('workers_history')}`.execute(rt.db)).rows[0]!.n).toBe(0);
    expect((await sql<{ n: number }>`select count(*)::int as n from ${wh('load_batches')} where tenant_id <> '_global'`.execute(rt.db)).rows[0]!.n).toBe(0);

    worker = startWorker(rt, { concurrency: 4 });
    // The scheduler is here for its recovery sweep; paused, it creates no scheduled run of its own.
    await rt.db.updateTable('dags').set({ is_paused: true }).where('dag_id', '=', 'hub-nightly').execute();
    scheduler = startScheduler(rt);
    expect((await waitForRun(h.rt, run.id, 45_000)).state).toBe('success');

    const attempts = await rt.db
      .selectFrom('attempts as a')
      .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
      .select(['a.outcome'])
      .where('ti.run_id', '=', run.id)
      .where('ti.task_id', '=', 'load')
      .where('ti.map_index', '=', 1)
      .orderBy('a.id')
      .execute();
    expect(attempts.map((a) => a.outcome)).toEqual(['lost', 'success']);
    const { rows } = await sql<{ versions: number; keys: number; current: number }>`
      select count(*)::int as versions, count(distinct worker_id)::int as keys, count(*) filter (where is_current)::int as current from ${wh('workers_history')}`.execute(
      rt.db,
    );
    expect(rows[0]).toEqual({ versions: 20_000, keys: 20_000, current: 20_000 });
    const recon = await rt.db.selectFrom('reconciliations').select(['entity', 'status', 'matched', 'source_count']).where('run_id', '=', run.id).execute();
    expect(recon.length).toBeGreaterThan(0);
    for (const r of recon) expect(r.status, r.entity).toBe('ok');
  }, 180_000);
});
