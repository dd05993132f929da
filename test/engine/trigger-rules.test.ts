import { afterEach, describe, expect, it } from 'vitest';
import { PermanentError, defineDag, task } from 'hubflow';
import { TRIGGER_RULES } from '../../server/engine/task.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { decide } from '../../server/engine/trigger-rules.ts';
import { airflowDecision, stateMixes } from './trigger-rules-airflow.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

describe('trigger rules decide as early as they are certain', () => {
  it.each([
    ['all_success', ['success', 'running'], 'wait'],
    ['all_success', ['success', 'success'], 'ready'],
    ['all_success', ['failed', 'running'], 'upstream_failed'],
    ['all_success', ['success', 'skipped'], 'skipped'],
    ['all_done', ['failed', 'running'], 'wait'],
    ['all_done', ['failed', 'skipped'], 'ready'],
    ['one_failed', ['upstream_failed', 'running'], 'ready'],
    ['one_failed', ['success', 'success'], 'skipped'],
    ['one_success', ['success', 'running'], 'ready'],
    ['one_success', ['failed', 'failed'], 'upstream_failed'],
    ['one_success', ['skipped', 'skipped'], 'skipped'],
    ['none_failed', ['success', 'skipped'], 'ready'],
    ['none_failed', ['failed', 'running'], 'upstream_failed'],
    ['none_failed_min_one_success', ['success', 'skipped'], 'ready'],
    ['none_failed_min_one_success', ['skipped', 'skipped'], 'skipped'],
    ['none_failed_min_one_success', ['success', 'running'], 'wait'],
    ['none_failed_min_one_success', ['upstream_failed', 'running'], 'upstream_failed'],
    ['all_failed', ['failed', 'upstream_failed'], 'ready'],
    ['all_failed', ['failed', 'running'], 'wait'],
    ['all_failed', ['success', 'running'], 'skipped'],
    ['all_failed', ['failed', 'skipped'], 'skipped'],
    ['one_done', ['success', 'running'], 'ready'],
    ['one_done', ['failed', 'running'], 'ready'],
    ['one_done', ['skipped', 'running'], 'wait'],
    ['one_done', ['skipped', 'skipped'], 'skipped'],
    // An upstream that never ran is neither a success nor a failure for one_done.
    ['one_done', ['upstream_failed', 'running'], 'wait'],
    ['one_done', ['upstream_failed', 'skipped'], 'skipped'],
    ['one_done', ['upstream_failed', 'success'], 'ready'],
    ['one_done', ['cancelled', 'running'], 'ready'],
    ['all_done_min_one_success', ['success', 'failed'], 'ready'],
    ['all_done_min_one_success', ['success', 'running'], 'wait'],
    ['all_done_min_one_success', ['failed', 'upstream_failed'], 'upstream_failed'],
    ['all_done_min_one_success', ['success', 'skipped'], 'skipped'],
    ['all_done_min_one_success', ['skipped', 'running'], 'skipped'],
    ['all_skipped', ['skipped', 'skipped'], 'ready'],
    ['all_skipped', ['skipped', 'running'], 'wait'],
    ['all_skipped', ['success', 'running'], 'skipped'],
    ['all_skipped', ['failed', 'skipped'], 'skipped'],
    ['none_skipped', ['success', 'failed'], 'ready'],
    ['none_skipped', ['success', 'running'], 'wait'],
    ['none_skipped', ['skipped', 'running'], 'skipped'],
    ['always', ['running', 'running'], 'ready'],
    ['always', ['failed', 'skipped'], 'ready'],
    ['all_success', ['cancelled', 'running'], 'upstream_failed'],
  ] as const)('%s with %j -> %s', (rule, states, expected) => {
    const counts: Record<string, number> = {};
    for (const state of states) counts[state] = (counts[state] ?? 0) + 1;
    expect(decide(rule, counts)).toBe(expected);
  });

  // Every rule, over every mix of one to four upstream instances in success, failed,
  // upstream_failed, skipped or not yet finished (125 mixes), against Airflow's own definition.
  it.each(TRIGGER_RULES.map((rule) => [rule]))('%s decides as Airflow does over every mix of upstream states', (rule) => {
    const mixes = stateMixes(4);
    expect(mixes).toHaveLength(125);
    const differ = mixes.flatMap((mix) => {
      const counts: Record<string, number> = {};
      for (const state of mix) counts[state] = (counts[state] ?? 0) + 1;
      const [ours, airflow] = [decide(rule, counts), airflowDecision(rule, mix)];
      return ours === airflow ? [] : [`${mix.join(',')}: ${ours}, Airflow ${airflow}`];
    });
    expect(differ).toEqual([]);
  });

  // Completions report, for states other than waiting, only that some instance is in them.
  it('decides the same from which states are present as from how many instances are in each', () => {
    const states = ['queued', 'running', 'success', 'failed', 'upstream_failed', 'skipped'] as const;
    const rules = TRIGGER_RULES;
    let checked = 0;
    for (let mask = 0; mask < 4 ** states.length; mask++) {
      const exact: Record<string, number> = {};
      const present: Record<string, number> = {};
      states.forEach((state, i) => {
        const n = [0, 1, 2, 500][Math.floor(mask / 4 ** i) % 4]!;
        if (n) [exact[state], present[state]] = [n, 1];
      });
      for (const rule of rules) {
        expect(decide(rule, present), `${rule} ${JSON.stringify(exact)}`).toBe(decide(rule, exact));
        checked++;
      }
    }
    expect(checked).toBe(4 ** states.length * rules.length);
  });
});

let rt: TestRuntime | undefined;
let worker: Executor;
afterEach(async () => {
  await worker?.close();
  await rt?.close();
  rt = undefined;
});

describe('a run where one branch fails permanently', () => {
  it('resolves every downstream task by its trigger rule and fails the run', async () => {
    const ran: string[] = [];
    const ok = (name: string) => () => {
      ran.push(name);
      return name;
    };
    const dag = defineDag({
      id: 'rules',
      retry: { attempts: 3, base: '10ms' },
      tasks: {
        good: task({ run: ok('good') }),
        bad: task({
          run: () => {
            ran.push('bad');
            throw new PermanentError('row 17: tenant_id missing');
          },
        }),
        all_success: task({ after: ['good', 'bad'], run: ok('all_success') }),
        all_done: task({ after: ['good', 'bad'], trigger: 'all_done', run: ok('all_done') }),
        one_failed: task({ after: ['good', 'bad'], trigger: 'one_failed', run: ok('one_failed') }),
        one_success: task({ after: ['good', 'bad'], trigger: 'one_success', run: ok('one_success') }),
        none_failed: task({ after: ['good', 'bad'], trigger: 'none_failed', run: ok('none_failed') }),
        all_failed: task({ after: ['good', 'bad'], trigger: 'all_failed', run: ok('all_failed') }),
        one_done: task({ after: ['good', 'bad'], trigger: 'one_done', run: ok('one_done') }),
        none_skipped: task({ after: ['good', 'bad'], trigger: 'none_skipped', run: ok('none_skipped') }),
        // Downstream of a skipped task (all_success, skipped because one_failed's upstream did not fail).
        only_failed: task({ after: ['bad'], trigger: 'all_failed', run: ok('only_failed') }),
        all_skipped: task({ after: ['all_failed'], trigger: 'all_skipped', run: ok('all_skipped') }),
        min_one: task({ after: ['all_failed', 'good'], trigger: 'none_failed_min_one_success', run: ok('min_one') }),
        after_skip: task({ after: ['all_success'], run: ok('after_skip') }),
        cleanup: task({ after: ['after_skip'], trigger: 'all_done', run: ok('cleanup') }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 3 });
    const run = await rt.engine.triggerRun('rules');
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    expect(await taskStates(rt, run.id)).toMatchObject({
      good: 'success',
      bad: 'failed',
      all_success: 'upstream_failed',
      all_done: 'success',
      one_failed: 'success',
      one_success: 'success',
      none_failed: 'upstream_failed',
      all_failed: 'skipped',
      one_done: 'success',
      none_skipped: 'success',
      only_failed: 'success',
      all_skipped: 'success',
      min_one: 'success',
      after_skip: 'upstream_failed',
      cleanup: 'success',
    });
    // A permanent error is not retried, and lands in the dead letters.
    expect(ran.filter((r) => r === 'bad')).toHaveLength(1);
    const dead = await rt.db.selectFrom('dead_letters').selectAll().execute();
    expect(dead).toHaveLength(1);
    expect(dead[0]).toMatchObject({ task_id: 'bad', tries: 1, error: { name: 'PermanentError', message: 'row 17: tenant_id missing' } });
  });

  it('clears the failed task and its downstream, and the run resumes to success', async () => {
    let healthy = false;
    const dag = defineDag({
      id: 'clearable',
      retry: { attempts: 1 },
      tasks: {
        first: task({ run: () => 1 }),
        flaky: task({
          after: ['first'],
          run: () => {
            if (!healthy) throw new Error('warehouse unavailable');
            return 2;
          },
        }),
        last: task({ after: ['flaky'], run: async (ctx) => ((await ctx.upstream<number>('flaky')) ?? 0) + 1 }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('clearable');
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    expect(await taskStates(rt, run.id)).toEqual({ first: 'success', flaky: 'failed', last: 'upstream_failed' });

    healthy = true;
    const { cleared } = await rt.engine.clear(run.id);
    expect(cleared.sort()).toEqual(['flaky', 'last']);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const rows = await rt.db.selectFrom('task_instances').select(['task_id', 'try_number', 'result']).where('run_id', '=', run.id).orderBy('id').execute();
    expect(rows).toEqual([
      { task_id: 'first', try_number: 1, result: 1 },
      { task_id: 'flaky', try_number: 2, result: 2 },
      { task_id: 'last', try_number: 1, result: 3 },
    ]);
    const open = await rt.db.selectFrom('dead_letters').select('resolution').execute();
    expect(open).toEqual([{ resolution: 'cleared' }]);
  });
});

describe("a task whose rule is 'always'", () => {
  it('starts with the run, before its upstream ends, and cannot be mapped', async () => {
    let started!: () => void;
    const alwaysStarted = new Promise<void>((resolve) => {
      started = resolve;
    });
    const dag = defineDag({
      id: 'always-rule',
      retry: { attempts: 1 },
      tasks: {
        // Ends only once the watcher has started: with the watcher waiting for it, the run would hang.
        slow: task({
          run: async () => {
            const gaveUp = new Promise<never>((_, reject) => setTimeout(() => reject(new PermanentError('the watcher did not start first')), 15_000));
            await Promise.race([alwaysStarted, gaveUp]);
            return 'slow';
          },
        }),
        watcher: task({
          after: ['slow'],
          trigger: 'always',
          run: () => {
            started();
            return 'watched';
          },
        }),
        after_both: task({ after: ['slow', 'watcher'], run: () => 'done' }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 2 });
    const run = await rt.engine.triggerRun('always-rule');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({ slow: 'success', watcher: 'success', after_both: 'success' });

    expect(() =>
      defineDag({
        id: 'always-mapped',
        tasks: { list: task({ run: () => [1] }), each: task({ map: 'list', trigger: 'always', run: () => 1 }) },
      }),
    ).toThrow("'always' starts a task before its upstreams end, and a mapped task needs its list: use all_done");
  });
});
