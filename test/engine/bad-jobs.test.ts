import type { Job } from 'bullmq';
import { defineDag, defineResource, task } from 'hubflow';
import { afterEach, describe, expect, it } from 'vitest';
import type { TaskJobData } from '../../server/engine/dispatch.ts';
import { Executor } from '../../server/engine/executor.ts';
import { registryOf } from '../../server/engine/loader.ts';
import type { Scheduler } from '../../server/engine/scheduler.ts';
import { startScheduler, startWorker } from '../../server/processes.ts';
import { openRuntime, type Runtime } from '../../server/runtime.ts';
import { alertWebhook, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime;
let worker: Executor | undefined;
let scheduler: Scheduler | undefined;
afterEach(async () => {
  await scheduler?.stop();
  await worker?.close();
  await rt?.close();
  worker = scheduler = undefined;
});

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Two independent tasks, each recording that its own code ran. */
function pair(ran: string[]) {
  return defineDag({
    id: 'pair',
    tasks: {
      first: task({ run: () => ran.push('first') && 'from first' }),
      second: task({ run: () => ran.push('second') && 'from second' }),
    },
  });
}

async function instanceOf(runId: number, taskId: string) {
  return rt.db.selectFrom('task_instances').selectAll().where('run_id', '=', runId).where('task_id', '=', taskId).executeTakeFirstOrThrow();
}

/** Adds a job by hand, as bull-board's "add job" or a script would. */
function addJob(id: string, data: unknown): Promise<Job<TaskJobData>> {
  return rt.engine.dispatcher.queue.add('forged', data as TaskJobData, { jobId: id });
}

async function failedOnce(id: string): Promise<Job<TaskJobData>> {
  await until(async () => (await rt.engine.dispatcher.queue.getJobState(id)) === 'failed', `job ${id} to fail`);
  const job = (await rt.engine.dispatcher.queue.getJob(id))!;
  expect(job.attemptsMade).toBe(1);
  return job;
}

/** A job's data as hubflow writes them, and the id it gives such a job. */
function jobFor(ti: { id: number; generation: number }, runId: number, taskId: string, dagId = 'pair') {
  const data = { tiId: ti.id, generation: ti.generation, runId, dagId, taskId, mapIndex: -1 };
  return { id: rt.engine.dispatcher.jobId({ runId, taskId, mapIndex: -1, generation: ti.generation }), data };
}

describe('a job added by hand', () => {
  it("naming one task's instance and another task runs the instance's own task, recorded as that task", async () => {
    const ran: string[] = [];
    rt = await testRuntime([pair(ran)]);
    const run = await rt.engine.triggerRun('pair');
    const first = await instanceOf(run.id, 'first');
    // Only the forged job points at `first`'s instance; its data name `second` (map index 5, so its id is free).
    await rt.engine.dispatcher.remove([{ runId: run.id, taskId: 'first', mapIndex: -1, generation: first.generation }]);
    const data = { tiId: first.id, generation: first.generation, runId: run.id, dagId: 'pair', taskId: 'second', mapIndex: 5 };
    await addJob(rt.engine.dispatcher.jobId({ runId: run.id, taskId: 'second', mapIndex: 5, generation: first.generation }), data);
    worker = startWorker(rt);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    // Each task's code ran once, for its own instance: the forged job did not run `second` as `first`.
    expect(ran.sort()).toEqual(['first', 'second']);
    expect((await instanceOf(run.id, 'first')).result).toBe('from first');
    expect((await instanceOf(run.id, 'second')).result).toBe('from second');
  });

  it('whose DAG and task ids name nothing loaded runs the task its instance names', async () => {
    const ran: string[] = [];
    rt = await testRuntime([pair(ran)]);
    const run = await rt.engine.triggerRun('pair');
    const first = await instanceOf(run.id, 'first');
    await rt.engine.dispatcher.remove([{ runId: run.id, taskId: 'first', mapIndex: -1, generation: first.generation }]);
    const odd = jobFor(first, run.id, 'nope', 'no-such-dag');
    await addJob(odd.id, odd.data);
    worker = startWorker(rt);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(ran.sort()).toEqual(['first', 'second']);
  });

  it('that is malformed, not made by hubflow, points at no instance, or at an old generation fails once, saying why, and runs nothing', async () => {
    const ran: string[] = [];
    rt = await testRuntime([pair(ran)]);
    const run = await rt.engine.triggerRun('pair');
    const first = await instanceOf(run.id, 'first');
    const real = jobFor(first, run.id, 'first');
    await addJob('no-ti', { dagId: 'pair', taskId: 'first' });
    await addJob('text-ti', { ...real.data, tiId: 'abc' });
    await addJob('no-generation', { ...real.data, generation: undefined });
    await addJob('no-run', { ...real.data, runId: undefined });
    await addJob('hand-made', real.data);
    const nowhere = jobFor({ id: 987_654, generation: 0 }, run.id, 'nope', 'nope');
    await addJob(nowhere.id, nowhere.data);
    const old = jobFor({ id: first.id, generation: first.generation + 3 }, run.id, 'first');
    await addJob(old.id, old.data);
    worker = startWorker(rt);
    expect((await failedOnce('no-ti')).failedReason).toBe('job no-ti: tiId must be a task instance id (a positive integer), not undefined');
    expect((await failedOnce('text-ti')).failedReason).toBe('job text-ti: tiId must be a task instance id (a positive integer), not "abc"');
    expect((await failedOnce('no-generation')).failedReason).toBe('job no-generation: generation must be a whole number, not undefined');
    expect((await failedOnce('no-run')).failedReason).toBe(
      'job no-run: its data do not name the run (runId), task (taskId) and map index (mapIndex) of a task instance',
    );
    expect((await failedOnce('hand-made')).failedReason).toBe(
      `job hand-made: hubflow gives the job its data describe the id ${real.id}: this one was not made by hubflow`,
    );
    expect((await failedOnce(nowhere.id)).failedReason).toBe(`job ${nowhere.id}: task instance 987654 is not in the store`);
    expect((await failedOnce(old.id)).failedReason).toBe(
      `job ${old.id}: made for generation ${first.generation + 3} of task instance ${first.id} (task 'first' of DAG 'pair'), which is at generation ${first.generation}: the instance was cleared or given a new job since`,
    );
    // The run's own jobs still ran each task once.
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(ran.sort()).toEqual(['first', 'second']);
    const attempts = await rt.db.selectFrom('attempts').select('outcome').execute();
    expect(attempts.map((a) => a.outcome)).toEqual(['success', 'success']);
  });
});

describe('a job naming a task without the resources of the instance it points at', () => {
  it('gives the claimed try back with the reason instead of running past the pool, and the instance runs later from its own job', async () => {
    const ran: string[] = [];
    const db = defineResource({ id: 'db', slots: 1 });
    const dag = defineDag({
      id: 'pooled',
      tasks: {
        heavy: task({ uses: [db], run: () => ran.push('heavy') && 'heavy' }),
        light: task({ run: () => ran.push('light') && 'light' }),
      },
    });
    rt = await testRuntime([dag], { HUBFLOW_SWEEP_INTERVAL_MS: '300', HUBFLOW_SCHEDULER_TICK_MS: '100' });
    const run = await rt.engine.triggerRun('pooled');
    const heavy = await instanceOf(run.id, 'heavy');
    await rt.engine.dispatcher.remove(['heavy', 'light'].map((taskId) => ({ runId: run.id, taskId, mapIndex: -1, generation: 0 })));
    const forged = jobFor(heavy, run.id, 'light', 'pooled');
    await addJob(forged.id, forged.data);
    worker = startWorker(rt);
    const reason = `job ${forged.id} named task 'light' of DAG 'pooled' in run ${run.id}, but instance ${heavy.id} is task 'heavy' of DAG 'pooled' in run ${run.id}, which uses other resources: not run`;
    expect((await failedOnce(forged.id)).failedReason).toBe(`job ${forged.id}: ${reason}`);
    scheduler = startScheduler(rt);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(ran.sort()).toEqual(['heavy', 'light']);
    const attempts = await rt.db.selectFrom('attempts').select(['outcome', 'error']).where('ti_id', '=', heavy.id).orderBy('try_number').execute();
    expect(attempts.map((a) => [a.outcome, (a.error as { message?: string } | null)?.message])).toEqual([
      ['retry', reason],
      ['success', undefined],
    ]);
  });
});

describe('a job for a task no worker has loaded', () => {
  it('fails once its hand-backs are spent, naming the task; the instance waits for a worker that knows it', async () => {
    rt = await testRuntime([pair([])], { HUBFLOW_SWEEP_INTERVAL_MS: '300', HUBFLOW_SCHEDULER_TICK_MS: '100' });
    const stale: Runtime = await openRuntime({ config: rt.config, dags: registryOf([]), log: rt.log });
    const staleWorker = new Executor(stale.engine, stale.log, {
      connection: stale.connection,
      prefix: stale.config.HUBFLOW_QUEUE_PREFIX,
      concurrency: 2,
      lockMs: stale.config.HUBFLOW_LOCK_MS,
      resources: stale.resources,
      handBackLimit: 0,
    });
    try {
      const run = await rt.engine.triggerRun('pair');
      const id = rt.engine.dispatcher.jobId({ runId: run.id, taskId: 'first', mapIndex: -1, generation: 0 });
      expect((await failedOnce(id)).failedReason).toBe(
        `job ${id}: task 'first' of DAG 'pair' is not loaded in any worker that took this job (handed back 0 times): deploy the DAG folder that declares it`,
      );
      expect(await instanceOf(run.id, 'first')).toMatchObject({ state: 'queued', try_number: 0 });
      await staleWorker.close();
      worker = startWorker(rt);
      scheduler = startScheduler(rt);
      expect((await waitForRun(rt, run.id)).state).toBe('success');
    } finally {
      await staleWorker.close();
      await stale.close();
    }
  });
});

describe('a worker lost in the last try', () => {
  it('leaves a readable error on the instance, its attempt, the dead letter and the alert', async () => {
    const hook = await alertWebhook();
    const dag = defineDag({ id: 'hangs', tasks: { only: task({ retry: { attempts: 1 }, run: () => new Promise(() => undefined) }) } });
    rt = await testRuntime([dag], {
      HUBFLOW_LOCK_MS: '1000',
      HUBFLOW_SWEEP_INTERVAL_MS: '300',
      HUBFLOW_SCHEDULER_TICK_MS: '100',
      HUBFLOW_ALERT_WEBHOOK: hook.url,
    });
    const lost = startWorker(rt);
    const run = await rt.engine.triggerRun('hangs');
    await until(async () => (await instanceOf(run.id, 'only')).state === 'running', 'the task to start');
    // As a killed worker leaves it: the try still running in the store, its heartbeat stopping.
    await lost.close({ abandon: true });
    worker = startWorker(rt);
    scheduler = startScheduler(rt);
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    const message = 'the worker running this attempt stopped before it finished';
    const ti = await instanceOf(run.id, 'only');
    expect(ti.error).toMatchObject({ name: 'WorkerLost', message });
    const attempts = await rt.db.selectFrom('attempts').select(['outcome', 'error']).where('ti_id', '=', ti.id).execute();
    expect(attempts.map((a) => (a.error as { message?: string } | null)?.message)).toEqual([message]);
    const dead = await rt.db.selectFrom('dead_letters').select('error').where('ti_id', '=', ti.id).executeTakeFirstOrThrow();
    expect(dead.error).toMatchObject({ name: 'WorkerLost', message });
    await until(() => hook.alerts.length > 0, 'the dead-letter alert');
    expect(hook.alerts).toEqual([expect.objectContaining({ kind: 'dead_letter', message })]);
    hook.close();
  });
});
