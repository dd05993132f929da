import { type BranchTarget, defineDag, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, expectTypeOf, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

/*
 * Branching as Airflow's @task.branch does it, on real runs: the branch returns which of its
 * direct downstream tasks to follow, the others end skipped with a reason naming the branch,
 * and the skip flows on by each task's trigger rule.
 */

const ok = (name: string) => () => name;

/** choose -> [full, delta, archive]; full -> after_full -> cleanup (all_done); [full, delta] -> report (none_failed_min_one_success), strict (all_success). */
function loadDag(id: string, choice: (conf: Readonly<Record<string, unknown>>) => unknown) {
  const choose = task.branch({ run: (ctx) => choice(ctx.conf) as string });
  const full = task({ after: [choose], run: ok('full') });
  const delta = task({ after: [choose], run: async (ctx) => ({ followed: await ctx.upstream(choose) }) });
  return defineDag({
    id,
    retry: { attempts: 3, base: '0s' },
    tasks: {
      choose,
      full,
      delta,
      archive: task({ after: [choose], run: ok('archive') }),
      after_full: task({ after: [full], run: ok('after_full') }),
      cleanup: task({ after: ['after_full'], trigger: 'all_done', run: ok('cleanup') }),
      report: task({
        after: [full, delta],
        trigger: 'none_failed_min_one_success',
        run: async (ctx) => ({ full: await ctx.upstream(full), delta: await ctx.upstream(delta) }),
      }),
      strict: task({ after: [full, delta], run: ok('strict') }),
    },
  });
}

let chooseTries = 0;
const branching = loadDag('branching', (conf) => {
  chooseTries++;
  return conf.follow;
});

// The join is also a direct downstream of the branch: it is not skipped, since a followed task leads to it.
const pick = task.branch({ run: () => 'extract' });
const diamond = defineDag({
  id: 'branch-diamond',
  tasks: {
    pick,
    extract: task({ after: [pick], run: ok('extract') }),
    skipped_side: task({ after: [pick], run: ok('side') }),
    join: task({ after: [pick, 'extract', 'skipped_side'], trigger: 'none_failed_min_one_success', run: ok('join') }),
  },
});

// A branch may name its choice by reference. The references run both ways (the choice is
// after the branch), so the branch's return type is written out: TypeScript infers no cycle.
const route = task.branch({ run: (): BranchTarget => [routeLarge] });
const routeSmall = task({ after: [route], run: ok('small') });
const routeLarge = task({
  after: [route],
  run: async (ctx) => {
    const followed = await ctx.upstream(route);
    expectTypeOf(followed).toEqualTypeOf<string[]>();
    return followed;
  },
});
const byReference = defineDag({ id: 'branch-by-reference', tasks: { route, small: routeSmall, large: routeLarge } });

// A branch that skips itself: its downstream follows its trigger rule, as below any skipped task.
const selfSkipping = defineDag({
  id: 'branch-skips-itself',
  tasks: {
    maybe: task.branch({ run: (ctx) => ctx.skip('no snapshot today') }),
    a: task({ after: ['maybe'], run: ok('a') }),
    b: task({ after: ['maybe'], trigger: 'all_done', run: ok('b') }),
  },
});

let rt: TestRuntime;
let worker: Executor;
beforeAll(async () => {
  rt = await testRuntime([branching, diamond, byReference, selfSkipping]);
  worker = startWorker(rt, { concurrency: 4 });
});
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

async function reasons(runId: number): Promise<Record<string, string>> {
  const rows = await rt.db.selectFrom('task_instances').select(['task_id', 'error']).where('run_id', '=', runId).where('state', '=', 'skipped').execute();
  return Object.fromEntries(rows.map((r) => [r.task_id, (r.error as { message?: string } | null)?.message ?? '']));
}

describe('a branch', () => {
  it('follows one task: the others are skipped naming the branch, all_success below them is skipped, the join runs', async () => {
    const run = await rt.engine.triggerRun('branching', { conf: { follow: 'delta' } });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({
      choose: 'success',
      full: 'skipped',
      delta: 'success',
      archive: 'skipped',
      after_full: 'skipped',
      cleanup: 'success',
      report: 'success',
      strict: 'skipped',
    });
    expect(await reasons(run.id)).toEqual({
      full: "not followed by branch 'choose', which followed 'delta'",
      archive: "not followed by branch 'choose', which followed 'delta'",
      after_full: '',
      strict: '',
    });
    const report = await rt.db
      .selectFrom('task_instances')
      .select('result')
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'report')
      .executeTakeFirstOrThrow();
    // A branch's result is the list of the ids it followed.
    expect(report.result).toEqual({ full: null, delta: { followed: ['delta'] } });

    // The DAG's graph says which task is the branch.
    const app = await createServer(rt);
    try {
      const page = (await app.inject({ method: 'GET', url: '/dags/branching' })).body;
      expect(page).toMatch(/<g class="node s-success branch" data-task="choose"[^>]*>\n<title>choose: branch · success<\/title>/);
      expect(page).toMatch(/<g class="node s-skipped" data-task="full"/);
    } finally {
      await app.close();
    }
  });

  it('follows several tasks when it returns a list', async () => {
    const run = await rt.engine.triggerRun('branching', { conf: { follow: ['full', 'delta', 'full'] } });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toMatchObject({
      full: 'success',
      delta: 'success',
      archive: 'skipped',
      after_full: 'success',
      report: 'success',
      strict: 'success',
    });
    expect(await reasons(run.id)).toEqual({ archive: "not followed by branch 'choose', which followed 'full', 'delta'" });
  });

  it('follows none when it returns null or an empty list: a join needing one success is skipped, all_done still runs', async () => {
    for (const follow of [null, []]) {
      const run = await rt.engine.triggerRun('branching', { conf: { follow } });
      expect((await waitForRun(rt, run.id)).state).toBe('success');
      expect(await taskStates(rt, run.id)).toEqual({
        choose: 'success',
        full: 'skipped',
        delta: 'skipped',
        archive: 'skipped',
        after_full: 'skipped',
        cleanup: 'success',
        report: 'skipped',
        strict: 'skipped',
      });
      expect((await reasons(run.id)).delta).toBe("not followed by branch 'choose', which followed none of its downstream tasks");
    }
  });

  it('fails at once, naming itself and what it returned, when that is not one of its direct downstream tasks', async () => {
    const cases: [unknown, string][] = [
      ['after_full', "branch 'choose' of DAG 'branching' returned 'after_full', which is not one of its direct downstream tasks (full, delta, archive)"],
      ['nope', "branch 'choose' of DAG 'branching' returned 'nope', which is not one of its direct downstream tasks (full, delta, archive)"],
      [
        { task: 'full' },
        "branch 'choose' of DAG 'branching' returned an object: a branch returns task ids (or references) among its direct downstream tasks (full, delta, archive), a list of them, or null for none",
      ],
    ];
    for (const [follow, message] of cases) {
      const before = chooseTries;
      const run = await rt.engine.triggerRun('branching', { conf: { follow } });
      expect((await waitForRun(rt, run.id)).state).toBe('failed');
      expect(await taskStates(rt, run.id)).toMatchObject({ choose: 'failed', full: 'upstream_failed', delta: 'upstream_failed', cleanup: 'success' });
      const choose = await rt.db
        .selectFrom('task_instances')
        .select(['error', 'try_number'])
        .where('run_id', '=', run.id)
        .where('task_id', '=', 'choose')
        .executeTakeFirstOrThrow();
      expect(choose.error).toMatchObject({ name: 'PermanentError', message });
      // Retrying the same code returns the same: one try of three.
      expect([choose.try_number, chooseTries - before]).toEqual([1, 1]);
    }
  });

  it('does not skip a direct downstream task that a followed task leads to: the join waits for it', async () => {
    const run = await rt.engine.triggerRun('branch-diamond');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({ pick: 'success', extract: 'success', skipped_side: 'skipped', join: 'success' });
  });

  it('may name its choice by reference', async () => {
    const run = await rt.engine.triggerRun('branch-by-reference');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({ route: 'success', small: 'skipped', large: 'success' });
    const large = await rt.db
      .selectFrom('task_instances')
      .select('result')
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'large')
      .executeTakeFirstOrThrow();
    expect(large.result).toEqual(['large']);
  });

  it('that skips itself leaves its downstream to their trigger rules', async () => {
    const run = await rt.engine.triggerRun('branch-skips-itself');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({ maybe: 'skipped', a: 'skipped', b: 'success' });
  });

  it('skips again a task it did not follow when that task is cleared, as Airflow does', async () => {
    const run = await rt.engine.triggerRun('branching', { conf: { follow: 'delta' } });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const { cleared } = await rt.engine.clear(run.id, { tasks: ['full'] });
    expect(cleared.sort()).toEqual(['after_full', 'cleanup', 'full', 'report', 'strict']);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toMatchObject({ full: 'skipped', after_full: 'skipped', cleanup: 'success', report: 'success', strict: 'skipped' });
    expect((await reasons(run.id)).full).toBe("not followed by branch 'choose', which followed 'delta'");
  });
});

describe('a branch declaration', () => {
  it('needs downstream tasks to choose from', () => {
    expect(() => defineDag({ id: 'lonely-branch', tasks: { choose: task.branch({ run: () => null }) } })).toThrow(
      "dag 'lonely-branch': tasks.choose: a branch needs downstream tasks to choose from: name it in their `after`",
    );
  });

  it('cannot be mapped', () => {
    const mapped = task.branch({ map: 'list', run: () => null } as never);
    expect(() =>
      defineDag({ id: 'mapped-branch', tasks: { list: task({ run: () => [1, 2] }), choose: mapped, next: task({ after: ['choose'], run: ok('next') }) } }),
    ).toThrow("dag 'mapped-branch': tasks.choose.map: a branch cannot be mapped: it decides once per run; map the tasks it chooses instead");
  });
});
