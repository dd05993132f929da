import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import { ConflictError } from '../../core/errors.ts';
import type { Executor } from '../../server/engine/executor.ts';
import type { Scheduler } from '../../server/engine/scheduler.ts';
import { startScheduler, startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let worker: Executor | undefined;
let scheduler: Scheduler | undefined;
afterEach(async () => {
  await scheduler?.stop();
  await worker?.close();
  await rt?.close();
  rt = worker = scheduler = undefined;
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** `hold` runs until its signal aborts (or `release` is called); `after` records that it ran. */
function holdingDag(seen: { aborted: unknown[]; ranAfter: number; started: number }, release: { go?: () => void } = {}) {
  return defineDag({
    id: 'holding',
    maxActiveRuns: 1,
    retry: { attempts: 3, base: '10ms', max: '20ms' },
    tasks: {
      hold: task({
        run: (ctx) =>
          new Promise<string>((resolve) => {
            seen.started++;
            release.go = () => resolve('released');
            ctx.signal.addEventListener('abort', () => seen.aborted.push(ctx.signal.reason), { once: true });
          }),
      }),
      after: task({
        after: ['hold'],
        run: () => {
          seen.ranAfter++;
          return 'ran';
        },
      }),
      cleanup: task({
        after: ['hold'],
        trigger: 'all_done',
        run: () => {
          seen.ranAfter++;
          return 'cleaned';
        },
      }),
    },
  });
}

describe('cancelling a running run', () => {
  it("aborts its running task's signal, runs nothing downstream, never retries, and frees its slot", async () => {
    const seen = { aborted: [] as unknown[], ranAfter: 0, started: 0 };
    const release: { go?: () => void } = {};
    rt = await testRuntime([holdingDag(seen, release)]);
    worker = startWorker(rt);
    const first = await rt.engine.triggerRun('holding', { logicalDate: new Date('2026-01-01T00:00:00Z') });
    const second = await rt.engine.triggerRun('holding', { logicalDate: new Date('2026-01-02T00:00:00Z') });
    await until(() => seen.started === 1, 'the first run to start its task');
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', second.id).executeTakeFirstOrThrow()).state).toBe('queued');

    const [cancelled] = await rt.engine.cancelRuns({ runIds: [first.id], reason: 'wrong source file' });
    expect(cancelled).toMatchObject({ id: first.id, was: 'running', tasks: 3, interrupted: 1 });

    // The worker notices on its own and aborts the task with the cancellation as the reason.
    await until(() => seen.aborted.length === 1, 'the task signal to abort');
    expect(seen.aborted[0]).toMatchObject({ name: 'TaskCancelledError', message: 'run cancelled: wrong source file' });

    const run = await rt.db.selectFrom('dag_runs').selectAll().where('id', '=', first.id).executeTakeFirstOrThrow();
    expect(run).toMatchObject({ state: 'cancelled', cancel_reason: 'wrong source file' });
    expect(await taskStates(rt, first.id)).toEqual({ hold: 'cancelled', after: 'cancelled', cleanup: 'cancelled' });

    // The slot is free: the next queued run starts (and is left to finish once released).
    await until(() => seen.started === 2, 'the queued run to start');
    release.go!();
    expect((await waitForRun(rt, second.id)).state).toBe('success');
    expect(seen.ranAfter).toBe(2); // the second run's `after` and `cleanup`, none of the first's

    const hold = await rt.db
      .selectFrom('task_instances')
      .select(['id', 'try_number', 'error'])
      .where('run_id', '=', first.id)
      .where('task_id', '=', 'hold')
      .executeTakeFirstOrThrow();
    expect(hold.try_number).toBe(1);
    expect(hold.error).toMatchObject({ name: 'TaskCancelledError' });
    const attempts = await rt.db.selectFrom('attempts').select(['try_number', 'outcome']).where('ti_id', '=', hold.id).execute();
    expect(attempts).toEqual([{ try_number: 1, outcome: 'cancelled' }]);
  });

  it('can be resumed with tasks clear, which runs again what the cancellation stopped', async () => {
    const seen = { aborted: [] as unknown[], ranAfter: 0, started: 0 };
    const release: { go?: () => void } = {};
    rt = await testRuntime([holdingDag(seen, release)]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('holding');
    await until(() => seen.started === 1, 'the task to start');
    await rt.engine.cancelRuns({ runIds: [run.id] });
    await until(() => seen.aborted.length === 1, 'the abort');

    expect((await rt.engine.clear(run.id)).cleared.sort()).toEqual(['after', 'cleanup', 'hold']);
    await until(() => seen.started === 2, 'the cleared task to start');
    release.go!();
    expect((await waitForRun(rt, run.id)).state).toBe('success');
  });
});

describe('cancelling queued runs', () => {
  it('by id, or by DAG and state, ends them cancelled without running a task, leaving the running one', async () => {
    const seen = { aborted: [] as unknown[], ranAfter: 0, started: 0 };
    rt = await testRuntime([holdingDag(seen)]);
    worker = startWorker(rt);
    const runs = [];
    for (const day of ['01', '02', '03', '04']) runs.push(await rt.engine.triggerRun('holding', { logicalDate: new Date(`2026-01-${day}T00:00:00Z`) }));
    await until(() => seen.started === 1, 'the first run to start');

    const [one] = await rt.engine.cancelRuns({ runIds: [runs[1]!.id] });
    expect(one).toMatchObject({ id: runs[1]!.id, was: 'queued', tasks: 3, interrupted: 0 });
    await expect(rt.engine.cancelRuns({ runIds: [runs[1]!.id] })).rejects.toThrow(ConflictError);

    const many = await rt.engine.cancelRuns({ dagId: 'holding', state: 'queued' });
    expect(many.map((r) => r.id)).toEqual([runs[2]!.id, runs[3]!.id]);
    for (const r of runs.slice(1)) {
      expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', r.id).executeTakeFirstOrThrow()).state).toBe('cancelled');
      expect(Object.values(await taskStates(rt, r.id))).toEqual(['cancelled', 'cancelled', 'cancelled']);
    }
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', runs[0]!.id).executeTakeFirstOrThrow()).state).toBe('running');
    expect(seen.started).toBe(1);
    const attempts = await rt.db
      .selectFrom('attempts as a')
      .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
      .select('ti.run_id')
      .where('ti.run_id', '!=', runs[0]!.id)
      .execute();
    expect(attempts).toEqual([]);
  });

  it('a job BullMQ still holds for a cancelled instance starts nothing', async () => {
    const ran: string[] = [];
    const dag = defineDag({ id: 'plain', tasks: { only: task({ run: (ctx) => void ran.push(ctx.taskId) }) } });
    rt = await testRuntime([dag]);
    const run = await rt.engine.triggerRun('plain');
    const ti = await rt.db.selectFrom('task_instances').selectAll().where('run_id', '=', run.id).executeTakeFirstOrThrow();
    expect(ti.state).toBe('queued');
    await rt.engine.cancelRuns({ runIds: [run.id] });
    // As if the job had been added again, or removing it had raced a worker.
    const ref = { tiId: ti.id, runId: run.id, dagId: 'plain', taskId: 'only', mapIndex: -1, generation: ti.generation, triesLeft: 1 };
    await rt.engine.dispatcher.enqueue([ref]);
    worker = startWorker(rt);
    await until(async () => (await rt!.engine.dispatcher.jobState(ref)) === 'completed', 'the job to be taken');
    const job = await rt.engine.dispatcher.queue.getJob(rt.engine.dispatcher.jobId(ref));
    expect(job?.returnvalue).toMatch(/not started/);
    expect(ran).toEqual([]);
    expect(await taskStates(rt, run.id)).toEqual({ only: 'cancelled' });
  });
});

describe('a paused DAG', () => {
  it('starts none of its queued backfill runs until unpaused; a manual run still runs', async () => {
    const dag = defineDag({
      id: 'daily',
      schedule: { cron: '0 6 * * *', timezone: 'UTC' },
      maxActiveRuns: 1,
      tasks: { only: task({ run: () => 'ok' }) },
    });
    rt = await testRuntime([dag], { HUBFLOW_SCHEDULER_TICK_MS: '100' });
    const backfill = await rt.engine.backfill('daily', new Date('2026-02-01T06:00:00Z'), new Date('2026-02-03T06:00:00Z'));
    expect(backfill).toHaveLength(3);
    await rt.db.updateTable('dags').set({ is_paused: true }).where('dag_id', '=', 'daily').execute();
    await expect(rt.engine.backfill('daily', new Date('2026-02-04T06:00:00Z'), new Date('2026-02-05T06:00:00Z'))).rejects.toThrow(/paused/);

    worker = startWorker(rt);
    scheduler = startScheduler(rt);
    // The run that had started goes on; the queued ones wait, tick after tick.
    expect((await waitForRun(rt, backfill[0]!.id)).state).toBe('success');
    const manual = await rt.engine.triggerRun('daily', { logicalDate: new Date('2026-03-01T06:00:00Z') });
    expect((await waitForRun(rt, manual.id)).state).toBe('success');
    await new Promise((r) => setTimeout(r, 500));
    const states = async () =>
      (
        await rt!.db
          .selectFrom('dag_runs')
          .select('state')
          .where(
            'id',
            'in',
            backfill.slice(1).map((r) => r.id),
          )
          .execute()
      ).map((r) => r.state);
    expect(await states()).toEqual(['queued', 'queued']);

    await rt.db.updateTable('dags').set({ is_paused: false }).where('dag_id', '=', 'daily').execute();
    for (const r of backfill.slice(1)) expect((await waitForRun(rt, r.id)).state).toBe('success');
  });
});
