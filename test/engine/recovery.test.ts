import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import pg from 'pg';
import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import type { Executor } from '../../server/engine/executor.ts';
import { loadDags, registryOf } from '../../server/engine/loader.ts';
import { openRuntime } from '../../server/runtime.ts';
import type { Scheduler } from '../../server/engine/scheduler.ts';
import { startScheduler, startWorker } from '../../server/processes.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.join(root, 'test/fixtures/dags');

let rt: TestRuntime;
let worker: Executor | undefined;
let scheduler: Scheduler | undefined;
let child: ChildProcess | undefined;
afterEach(async () => {
  child?.kill('SIGKILL');
  await scheduler?.stop();
  await worker?.close();
  await rt?.close();
  worker = scheduler = child = undefined;
});

async function until(check: () => boolean | Promise<boolean>, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Success recorded at most once per task instance, whatever happened to the workers. */
async function successesPerInstance(runId: number): Promise<number[]> {
  const rows = await rt.db
    .selectFrom('attempts as a')
    .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
    .select(['ti.id', (eb) => eb.fn.countAll<string>().as('n')])
    .where('ti.run_id', '=', runId)
    .where('a.outcome', '=', 'success')
    .groupBy('ti.id')
    .execute();
  return rows.map((r) => Number(r.n));
}

/**
 * Starts a run where `list` fans out into n `work` instances (each records its item in `done`)
 * and `sum` adds their results, with a worker, a scheduler and a quick recovery sweep; returns
 * once `doneBefore` instances have finished.
 */
async function fanOutUnderway(o: { n: number; workMs: number; concurrency: number; doneBefore: number }) {
  const done: number[] = [];
  rt = await testRuntime([summingFanOut(o.n, o.workMs, done)], { HUBFLOW_SWEEP_INTERVAL_MS: '300', HUBFLOW_SCHEDULER_TICK_MS: '100', HUBFLOW_LOCK_MS: '1000' });
  worker = startWorker(rt, { concurrency: o.concurrency });
  scheduler = startScheduler(rt);
  const run = await rt.engine.triggerRun('fan-out');
  await until(() => done.length >= o.doneBefore, 10_000, 'the first mapped tasks');
  return { run, done };
}

/** The run succeeded, summed all n items, and recorded one success per instance (n mapped, list and sum). */
async function expectSummedOnce(runId: number, n: number): Promise<void> {
  expect((await waitForRun(rt, runId, 30_000)).state).toBe('success');
  const sum = await rt.db.selectFrom('task_instances').select('result').where('run_id', '=', runId).where('task_id', '=', 'sum').executeTakeFirstOrThrow();
  expect(sum.result).toBe(((n - 1) * n) / 2);
  expect(await successesPerInstance(runId)).toEqual(Array(n + 2).fill(1));
}

function summingFanOut(n: number, workMs: number, done: number[]) {
  return defineDag({
    id: 'fan-out',
    tasks: {
      list: task({ run: () => Array.from({ length: n }, (_, i) => i) }),
      work: task<number>({
        map: 'list',
        run: async (ctx) => {
          await new Promise((r) => setTimeout(r, workMs));
          done.push(ctx.item);
          return ctx.item;
        },
      }),
      sum: task({ after: ['work'], run: async (ctx) => (await ctx.upstream<number[]>('work')).reduce((a, b) => a + b, 0) }),
    },
  });
}

describe('a worker killed in the middle of a task', () => {
  it('has that task retried elsewhere, and the run completes with nothing recorded twice', async () => {
    rt = await testRuntime(await loadDags(fixtures), { HUBFLOW_LOCK_MS: '1000' });
    const journal = path.join(mkdtempSync(path.join(tmpdir(), 'hubflow-')), 'journal');
    child = spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), 'worker'], {
      env: { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: fixtures, HUBFLOW_LOCK_MS: '1000' },
      stdio: 'ignore',
    });
    const run = await rt.engine.triggerRun('crash-recovery', { conf: { journal, holdMs: 60_000 } });
    const read = () => {
      try {
        return readFileSync(journal, 'utf8');
      } catch {
        return '';
      }
    };
    await until(() => read().includes('start 1'), 30_000, 'the child worker to start the task');
    child.kill('SIGKILL');
    const childPid = child.pid;

    worker = startWorker(rt);
    expect((await waitForRun(rt, run.id, 30_000)).state).toBe('success');

    expect(read().trim().split('\n')).toEqual([`start 1 ${childPid}`, `start 2 ${process.pid}`, `end 2 ${process.pid}`]);
    const slow = await rt.db
      .selectFrom('task_instances')
      .select(['id', 'try_number', 'result'])
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'slow')
      .executeTakeFirstOrThrow();
    expect(slow.result).toEqual({ pid: process.pid });
    const attempts = await rt.db.selectFrom('attempts').select(['try_number', 'outcome']).where('ti_id', '=', slow.id).orderBy('try_number').execute();
    expect(attempts).toEqual([
      { try_number: 1, outcome: 'lost' },
      { try_number: 2, outcome: 'success' },
    ]);
    expect(await successesPerInstance(run.id)).toEqual([1, 1, 1]);
  });
});

describe("a fresh store next to a Redis that kept an old store's jobs", () => {
  it('runs its own run 1 instead of mistaking the old run 1 job for it', async () => {
    const dag = defineDag({ id: 'again', tasks: { only: task({ run: () => 'done' }) } });
    const prefix = `hf-shared-${Date.now()}`;
    const old = await testRuntime([dag], { HUBFLOW_QUEUE_PREFIX: prefix });
    const oldWorker = startWorker(old);
    const first = await old.engine.triggerRun('again');
    expect((await waitForRun(old, first.id)).state).toBe('success');
    await oldWorker.close();
    try {
      rt = await testRuntime([dag], { HUBFLOW_QUEUE_PREFIX: prefix });
      worker = startWorker(rt);
      const run = await rt.engine.triggerRun('again');
      expect(run.id).toBe(first.id);
      expect((await waitForRun(rt, run.id, 10_000)).state).toBe('success');
    } finally {
      await old.close();
    }
  });
});

describe('Redis losing its data mid-run', () => {
  it('does not lose the run: the sweep re-enqueues what the store says is ready', async () => {
    const { run, done } = await fanOutUnderway({ n: 30, workMs: 40, concurrency: 2, doneBefore: 5 });

    // Everything of this installation's queues is gone, as after a Redis restart without persistence.
    const redis = new Redis(TEST_REDIS_URL);
    const keys = await redis.keys(`${rt.config.HUBFLOW_QUEUE_PREFIX}:*`);
    expect(keys.length).toBeGreaterThan(0);
    await redis.del(...keys);
    redis.disconnect();

    await expectSummedOnce(run.id, 30);
    expect(new Set(done).size).toBe(30);
  });
});

describe('a worker that does not know the DAG (another version of the DAG folder)', () => {
  it('hands the task back without spending a try, and a worker that knows it runs it', async () => {
    const dag = defineDag({ id: 'new-dag', tasks: { only: task({ run: () => 'ran' }) } });
    rt = await testRuntime([dag]);
    const stale = await openRuntime({ config: rt.config, dags: registryOf([]), log: rt.log });
    const staleWorker = startWorker(stale);
    try {
      const run = await rt.engine.triggerRun('new-dag');
      await new Promise((r) => setTimeout(r, 800));
      const waiting = await rt.db.selectFrom('task_instances').select(['state', 'try_number']).where('run_id', '=', run.id).executeTakeFirstOrThrow();
      expect(waiting).toEqual({ state: 'queued', try_number: 0 });
      await staleWorker.close();
      worker = startWorker(rt);
      expect((await waitForRun(rt, run.id, 20_000)).state).toBe('success');
    } finally {
      await staleWorker.close();
      await stale.close();
    }
  });
});

/** Ends every PostgreSQL session of this installation's store, as a restart or failover would, and waits until they are gone. */
async function terminateStoreConnections(): Promise<number> {
  const admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
  await admin.connect();
  try {
    const { rows } = await admin.query<{ pid: number }>(`select pid, pg_terminate_backend(pid) from pg_stat_activity where application_name = $1`, [
      `hubflow ${rt.config.HUBFLOW_DB_SCHEMA}`,
    ]);
    const pids = rows.map((r) => r.pid);
    // Until they are gone, a query of this test's own could still draw one of them from the pool.
    await until(async () => (await admin.query(`select 1 from pg_stat_activity where pid = any($1)`, [pids])).rows.length === 0, 5_000, 'the sessions to end');
    return pids.length;
  } finally {
    await admin.end();
  }
}

describe('PostgreSQL dropping every connection (a restart or a failover)', () => {
  it('costs nothing but new connections: the next run completes', async () => {
    const dag = defineDag({
      id: 'chain',
      tasks: { a: task({ run: () => 1 }), b: task({ after: ['a'], run: () => 2 }), c: task({ after: ['b'], run: () => 3 }) },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 2 });
    expect((await waitForRun(rt, (await rt.engine.triggerRun('chain', { logicalDate: new Date('2026-01-01') })).id)).state).toBe('success');

    // The pool's idle connections and the two the engine keeps for starts and completions.
    expect(await terminateStoreConnections()).toBeGreaterThanOrEqual(2);

    const run = await rt.engine.triggerRun('chain', { logicalDate: new Date('2026-01-02') });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await successesPerInstance(run.id)).toEqual([1, 1, 1]);
  });

  it('in the middle of a run loses nothing: the run completes with no task recorded twice', async () => {
    const { run } = await fanOutUnderway({ n: 40, workMs: 20, concurrency: 4, doneBefore: 8 });

    expect(await terminateStoreConnections()).toBeGreaterThanOrEqual(2);

    await expectSummedOnce(run.id, 40);
  });
});
