import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineDag, PermanentError, task } from 'hubflow';
import { ConflictError, InvalidInputError, NotFoundError } from '../../core/errors.ts';
import { clear, listDeadLetters, markRun, markTask, replayDeadLetters, setPaused, trigger } from '../../server/engine/actions.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const actor = { by: 'test', reason: 'checking' };
const failing = new Set<string>();

/** extract → load → report, an alert on any failure of extract, and a fan over tenants. */
const chain = defineDag({
  id: 'act-chain',
  retry: { attempts: 1 },
  tasks: {
    extract: task({
      run: (ctx) => {
        if (failing.has('extract') || ctx.conf.fail === 'extract') throw new PermanentError('source unreachable');
        return 'extracted';
      },
    }),
    load: task({ after: ['extract'], run: () => 'loaded' }),
    report: task({ after: ['load'], run: () => 'reported' }),
    alert: task({ after: ['extract'], trigger: 'one_failed', run: () => 'alerted' }),
  },
});

const fan = defineDag({
  id: 'act-fan',
  retry: { attempts: 1 },
  tasks: {
    tenants: task({ run: () => ['acme', 'globex', 'initech'] }),
    extract: task<string>({
      map: 'tenants',
      run: (ctx) => {
        if (failing.has(ctx.item)) throw new PermanentError(`tenant ${ctx.item} unreachable`);
        return ctx.item;
      },
    }),
    load: task({ after: ['extract'], run: () => 'loaded' }),
  },
});

/** hold runs until released; after waits for it. */
const release: { go?: () => void } = {};
const holding = defineDag({
  id: 'act-hold',
  retry: { attempts: 1 },
  tasks: {
    hold: task({ run: () => new Promise<string>((resolve) => (release.go = () => resolve('released'))) }),
    after: task({ after: ['hold'], run: () => 'after' }),
  },
});

const releaseHold = () => release.go?.();

async function until(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

let rt: TestRuntime;
let worker: Executor;
let day = 0;
const nextDate = () => new Date(Date.UTC(2026, 0, 1 + day++));

beforeAll(async () => {
  rt = await testRuntime([chain, fan, holding]);
  worker = startWorker(rt, { concurrency: 4 });
});
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

async function failedRun(dagId: string, conf: Record<string, unknown> = {}): Promise<number> {
  const run = await trigger(rt.engine, dagId, { logicalDate: nextDate(), conf }, actor);
  expect((await waitForRun(rt, run.id)).state).toBe('failed');
  return run.id;
}

const letters = (runId: number) =>
  rt.db.selectFrom('dead_letters').select(['task_id', 'map_index', 'resolution', 'resolved_by']).where('run_id', '=', runId).orderBy('id').execute();

describe('marking a task', () => {
  it('success: its open dead letter is resolved, its downstream that did not run proceeds, the run ends success', async () => {
    const runId = await failedRun('act-chain', { fail: 'extract' });
    expect(await taskStates(rt, runId)).toEqual({ extract: 'failed', load: 'upstream_failed', report: 'upstream_failed', alert: 'success' });
    const marked = await markTask(rt.engine, runId, 'extract', { state: 'success', actor });
    expect(marked).toMatchObject({ marked: [-1], reset: expect.arrayContaining(['load', 'report']) });
    expect((await waitForRun(rt, runId)).state).toBe('success');
    // The alert ran already; what ran is not undone.
    expect(await taskStates(rt, runId)).toEqual({ extract: 'success', load: 'success', report: 'success', alert: 'success' });
    expect(await letters(runId)).toEqual([{ task_id: 'extract', map_index: -1, resolution: 'marked_success', resolved_by: 'test' }]);
  });

  it('failed: its downstream follows its trigger rules, the one_failed alert runs, and the run ends failed', async () => {
    const run = await trigger(rt.engine, 'act-chain', { logicalDate: nextDate() }, actor);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect((await taskStates(rt, run.id)).alert).toBe('skipped');
    const marked = await markTask(rt.engine, run.id, 'extract', { state: 'failed', actor });
    expect(marked.reset).toEqual(['alert']);
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    expect(await taskStates(rt, run.id)).toEqual({ extract: 'failed', load: 'success', report: 'success', alert: 'success' });
    const ti = await rt.db.selectFrom('task_instances').select('error').where('run_id', '=', run.id).where('task_id', '=', 'extract').executeTakeFirstOrThrow();
    expect(ti.error).toEqual({ name: 'MarkedFailed', message: 'marked failed by test: checking' });
    // A marked failure is the operator's word, not a dead letter.
    expect(await letters(run.id)).toEqual([]);
  });

  it('one map index: only that tenant is marked, and load runs once none is failed', async () => {
    failing.add('globex');
    const runId = await failedRun('act-fan');
    failing.delete('globex');
    expect(await taskStates(rt, runId)).toMatchObject({ 'extract[1]': 'failed', load: 'upstream_failed' });
    await markTask(rt.engine, runId, 'extract', { state: 'success', mapIndex: 1, actor });
    expect((await waitForRun(rt, runId)).state).toBe('success');
    expect(await taskStates(rt, runId)).toEqual({
      tenants: 'success',
      'extract[0]': 'success',
      'extract[1]': 'success',
      'extract[2]': 'success',
      load: 'success',
    });
    expect(await letters(runId)).toEqual([{ task_id: 'extract', map_index: 1, resolution: 'marked_success', resolved_by: 'test' }]);
  });

  it('refuses an unknown run, task or map index, and a map index of a task that is not mapped', async () => {
    const runId = await failedRun('act-chain', { fail: 'extract' });
    await expect(markTask(rt.engine, 99_999_999, 'extract', { state: 'success', actor })).rejects.toThrow(NotFoundError);
    await expect(markTask(rt.engine, runId, 'nope', { state: 'success', actor })).rejects.toThrow("DAG 'act-chain' has no task 'nope'");
    await expect(markTask(rt.engine, runId, 'extract', { state: 'success', mapIndex: 0, actor })).rejects.toThrow(InvalidInputError);
    expect(await taskStates(rt, runId)).toMatchObject({ extract: 'failed' });
  });
});

describe('marking while a task runs', () => {
  it('refuses to mark the running task or its run, and marks a task still waiting, which then never runs', async () => {
    release.go = undefined;
    const run = await trigger(rt.engine, 'act-hold', { logicalDate: nextDate() }, actor);
    await until(() => release.go !== undefined, 'hold to start');
    await expect(markTask(rt.engine, run.id, 'hold', { state: 'success', actor })).rejects.toThrow(
      /task 'hold' of run \d+ is running: wait for its try to end, or cancel the run/,
    );
    await expect(markRun(rt.engine, run.id, { state: 'failed', actor })).rejects.toThrow(ConflictError);
    expect(await markTask(rt.engine, run.id, 'after', { state: 'success', actor })).toMatchObject({ marked: [-1], runState: 'running' });
    releaseHold();
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const after = await rt.db
      .selectFrom('task_instances')
      .select(['state', 'try_number'])
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'after')
      .executeTakeFirstOrThrow();
    expect(after).toEqual({ state: 'success', try_number: 0 });
  });
});

describe('marking a run', () => {
  it('success: every instance not success or skipped becomes success, its dead letters are resolved', async () => {
    const runId = await failedRun('act-chain', { fail: 'extract' });
    const marked = await markRun(rt.engine, runId, { state: 'success', actor });
    expect(marked).toEqual({ run: runId, dag: 'act-chain', state: 'success', instances: 3 });
    const run = await rt.db.selectFrom('dag_runs').select(['state', 'ended_at']).where('id', '=', runId).executeTakeFirstOrThrow();
    expect(run.state).toBe('success');
    expect(await taskStates(rt, runId)).toEqual({ extract: 'success', load: 'success', report: 'success', alert: 'success' });
    expect(await letters(runId)).toEqual([{ task_id: 'extract', map_index: -1, resolution: 'marked_success', resolved_by: 'test' }]);
  });

  it('failed: a run that has not started ends failed, its tasks skipped', async () => {
    await setPaused(rt.engine, 'act-chain', true, actor);
    const run = await rt.engine.createRun(chain, {
      logicalDate: nextDate(),
      intervalStart: new Date(0),
      intervalEnd: new Date(0),
      runType: 'scheduled',
    });
    await rt.engine.activate('act-chain');
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', run!.id).executeTakeFirstOrThrow()).state).toBe('queued');
    await expect(markTask(rt.engine, run!.id, 'extract', { state: 'success', actor })).rejects.toThrow(/has not started yet/);
    await markRun(rt.engine, run!.id, { state: 'failed', actor });
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', run!.id).executeTakeFirstOrThrow()).state).toBe('failed');
    expect(Object.values(await taskStates(rt, run!.id))).toEqual(['skipped', 'skipped', 'skipped', 'skipped']);
    await setPaused(rt.engine, 'act-chain', false, actor);
  });
});

describe('clearing', () => {
  it('a task without its downstream, and failed only', async () => {
    const runId = await failedRun('act-chain', { fail: 'extract' });
    // Only extract: it fails again (the conf still says so), load and report are not reset.
    expect(await clear(rt.engine, runId, { tasks: ['extract'], downstream: false }, actor)).toEqual({ cleared: ['extract'] });
    expect((await waitForRun(rt, runId)).state).toBe('failed');
    const tries = await rt.db.selectFrom('task_instances').select(['task_id', 'try_number']).where('run_id', '=', runId).execute();
    expect(Object.fromEntries(tries.map((t) => [t.task_id, t.try_number]))).toEqual({ extract: 2, load: 0, report: 0, alert: 1 });
    // Failed only: the alert, which succeeded, is left alone.
    const cleared = await clear(rt.engine, runId, { tasks: ['extract'], failedOnly: true }, actor);
    expect(cleared.cleared.sort()).toEqual(['extract', 'load', 'report']);
    expect((await waitForRun(rt, runId)).state).toBe('failed');
    expect(await letters(runId)).toEqual([
      { task_id: 'extract', map_index: -1, resolution: 'cleared', resolved_by: 'test' },
      { task_id: 'extract', map_index: -1, resolution: 'cleared', resolved_by: 'test' },
      { task_id: 'extract', map_index: -1, resolution: null, resolved_by: null },
    ]);
  });
});

describe('replaying dead letters', () => {
  it('by DAG: every open letter is replayed, its instance gets fresh tries, the runs succeed', async () => {
    failing.add('extract');
    const first = await failedRun('act-chain');
    const second = await failedRun('act-chain');
    failing.delete('extract');
    const open = await listDeadLetters(rt.db, { dagId: 'act-chain' });
    const mine = open.filter((l) => l.run_id === first || l.run_id === second);
    expect(mine.map((l) => l.task_id)).toEqual(['extract', 'extract']);

    const result = await replayDeadLetters(rt.engine, { ids: mine.map((l) => l.id) }, actor);
    expect(result.replayed).toEqual(mine.map((l) => l.id).sort((a, b) => a - b));
    expect(result.refused).toEqual([]);
    for (const run of [first, second]) {
      expect((await waitForRun(rt, run)).state).toBe('success');
      expect(await letters(run)).toEqual([{ task_id: 'extract', map_index: -1, resolution: 'replayed', resolved_by: 'test' }]);
    }
    await expect(replayDeadLetters(rt.engine, { ids: [mine[0]!.id] }, actor)).rejects.toThrow(ConflictError);
    await expect(replayDeadLetters(rt.engine, { ids: [99_999_999] }, actor)).rejects.toThrow('no dead letter 99999999');
  });

  it('in bulk for a DAG and task, a mapped tenant reruns with its task', async () => {
    failing.add('initech');
    const runId = await failedRun('act-fan');
    failing.delete('initech');
    const result = await replayDeadLetters(rt.engine, { dagId: 'act-fan', taskId: 'extract' }, actor);
    expect(result.runs).toEqual([{ run: runId, cleared: ['extract', 'load'] }]);
    expect((await waitForRun(rt, runId)).state).toBe('success');
    expect(await letters(runId)).toEqual([{ task_id: 'extract', map_index: 2, resolution: 'replayed', resolved_by: 'test' }]);
    expect(await listDeadLetters(rt.db, { dagId: 'act-fan' })).toEqual([]);
    const resolved = await listDeadLetters(rt.db, { dagId: 'act-fan', status: 'resolved' });
    expect(resolved[0]).toMatchObject({ task_id: 'extract', map_item: null, resolution: 'replayed', resolved_by: 'test' });
  });
});

describe('pausing', () => {
  it('sets the flag the scheduler reads, and says whether it changed', async () => {
    expect(await setPaused(rt.engine, 'act-fan', true, actor)).toEqual({ dag: 'act-fan', paused: true, changed: true });
    expect(await setPaused(rt.engine, 'act-fan', true, actor)).toEqual({ dag: 'act-fan', paused: true, changed: false });
    expect((await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'act-fan').executeTakeFirstOrThrow()).is_paused).toBe(true);
    await setPaused(rt.engine, 'act-fan', false, actor);
    expect((await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'act-fan').executeTakeFirstOrThrow()).is_paused).toBe(false);
    await expect(setPaused(rt.engine, 'nope', true, actor)).rejects.toThrow(NotFoundError);
  });

  it('unpausing starts the scheduled runs that waited for it', async () => {
    await setPaused(rt.engine, 'act-fan', true, actor);
    const at = nextDate();
    const run = await rt.engine.createRun(fan, { logicalDate: at, intervalStart: at, intervalEnd: at, runType: 'scheduled' });
    await rt.engine.activate('act-fan');
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', run!.id).executeTakeFirstOrThrow()).state).toBe('queued');
    await setPaused(rt.engine, 'act-fan', false, actor);
    expect((await waitForRun(rt, run!.id)).state).toBe('success');
  });
});
