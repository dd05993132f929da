import { PermanentError, defineDag, task, type TaskDeclaration } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { TRIGGER_RULES, type TriggerRule } from '../../server/engine/task.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { airflowDecision, type UpstreamState } from './trigger-rules-airflow.ts';

/*
 * Every trigger rule over every mix of the four ways an upstream ends, on one real run: a task
 * per (rule, non-empty set of upstreams) among a success, a skip, a failure and an
 * upstream_failed. The upstreams end in a fixed order (success, then skip, then the failure
 * and its upstream_failed together), so a rule decided early is decided on a known mix; the
 * expected state is Airflow's decision on the first mix where it is certain.
 */

const SOURCES = { ok: 'success', skip: 'skipped', fail: 'failed', never: 'upstream_failed' } as const;
type Source = keyof typeof SOURCES;
/** What has ended after each step of the run: the failure's completion also resolves its downstream. */
const STEPS: readonly (readonly Source[])[] = [['ok'], ['ok', 'skip'], ['ok', 'skip', 'fail', 'never']];

const subsets: Source[][] = [];
for (let mask = 1; mask < 16; mask++) subsets.push((Object.keys(SOURCES) as Source[]).filter((_, i) => mask & (1 << i)));

function expected(rule: TriggerRule, upstreams: readonly Source[]): string {
  for (const ended of STEPS) {
    const mix: UpstreamState[] = upstreams.map((u) => (ended.includes(u) ? SOURCES[u] : 'running'));
    const decision = airflowDecision(rule, mix);
    if (decision !== 'wait') return decision === 'ready' ? 'success' : decision;
  }
  throw new Error(`${rule} over ${upstreams.join(', ')} is never decided`);
}

const tasks: Record<string, TaskDeclaration> = {
  ok: task({ run: () => 'ok' }),
  skip: task({ after: ['ok'], run: (ctx) => ctx.skip('nothing new') }),
  fail: task({
    after: ['skip'],
    trigger: 'all_done',
    run: () => {
      throw new PermanentError('row 3: tenant_id missing');
    },
  }),
  never: task({ after: ['fail'], run: () => 'never runs' }),
  // Judged by a later completion, which reads the upstream_failed one back from the store:
  // it must still tell it from a failure.
  late_skip: task({ after: ['fail'], trigger: 'all_done', run: (ctx) => ctx.skip('too late') }),
  one_done_late: task({ after: ['never', 'late_skip'], trigger: 'one_done', run: () => 'ran' }),
};
const want: Record<string, string> = {
  ok: 'success',
  skip: 'skipped',
  fail: 'failed',
  never: 'upstream_failed',
  late_skip: 'skipped',
  one_done_late: 'skipped',
};
for (const rule of TRIGGER_RULES) {
  for (const upstreams of subsets) {
    const id = `${rule}.${upstreams.join('.')}`;
    tasks[id] = task({ after: upstreams, trigger: rule, run: () => id });
    want[id] = expected(rule, upstreams);
  }
}
const dag = defineDag({ id: 'rule-matrix', retry: { attempts: 2, base: '0s' }, tasks });

let rt: TestRuntime;
let worker: Executor;
beforeAll(async () => {
  rt = await testRuntime([dag]);
  worker = startWorker(rt, { concurrency: 8 });
});
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

describe('every trigger rule over every mix of upstream outcomes, on a real run', () => {
  it(`resolves all ${TRIGGER_RULES.length * subsets.length} tasks as Airflow defines their rules`, async () => {
    expect(Object.keys(want)).toHaveLength(6 + TRIGGER_RULES.length * 15);
    const run = await rt.engine.triggerRun('rule-matrix');
    expect((await waitForRun(rt, run.id, 60_000)).state).toBe('failed');
    expect(await taskStates(rt, run.id)).toEqual(want);
  }, 90_000);

  it('reads as a table a reviewer can check against Airflow', () => {
    // A few rows of `want`, spelled out: the decisions that most often surprise.
    expect(want['all_success.ok.skip.fail']).toBe('skipped'); // the skip came first
    expect(want['one_done.never']).toBe('skipped'); // an upstream that never ran is no "done" for one_done
    expect(want['none_failed.skip']).toBe('success'); // all skipped still counts as none failed
    expect(want['none_failed_min_one_success.skip']).toBe('skipped');
    expect(want['none_failed_min_one_success.ok.skip']).toBe('success');
    expect(want['all_failed.fail.never']).toBe('success');
    expect(want['all_done_min_one_success.ok.fail']).toBe('success');
    expect(want['all_done_min_one_success.ok.skip']).toBe('skipped');
    expect(want['always.fail']).toBe('success');
  });
});
