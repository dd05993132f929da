import { defineDag, SkipTaskError, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const REASON = 'snapshot 2026-01-02 is older than the one already applied (2026-01-03); nothing to load';
let tries = 0;

const dag = defineDag({
  id: 'skipping',
  retry: { attempts: 3, base: '0s' },
  tasks: {
    check: task({
      run: () => {
        tries++;
        throw new SkipTaskError(REASON);
      },
    }),
    next: task({ after: ['check'], run: () => 'ran' }),
    always: task({ after: ['check'], trigger: 'all_done', run: () => 'ran' }),
    unless_failed: task({ after: ['check'], trigger: 'none_failed', run: () => 'ran' }),
  },
});

// ctx.skip(reason) throws the same error. Typed `never`, `return ctx.skip(...)` narrows like a throw.
const ctxSkipping = defineDag({
  id: 'ctx-skipping',
  retry: { attempts: 3, base: '0s' },
  tasks: {
    load: task({
      run: (ctx) => {
        const snapshot = ctx.conf.snapshot as string | undefined;
        if (!snapshot) return ctx.skip('no snapshot named in the conf');
        return snapshot.length;
      },
    }),
    publish: task({ after: ['load'], run: () => 'published' }),
  },
});

let rt: TestRuntime;
let worker: Executor;
beforeAll(async () => {
  rt = await testRuntime([dag, ctxSkipping]);
  worker = startWorker(rt);
});
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

describe('a task that throws SkipTaskError', () => {
  it('ends skipped with its reason, once, and downstream follows the trigger rules; the run succeeds', async () => {
    const run = await rt.engine.triggerRun('skipping');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({ check: 'skipped', next: 'skipped', always: 'success', unless_failed: 'success' });
    expect(tries).toBe(1);
    const check = await rt.db
      .selectFrom('task_instances')
      .select(['error', 'result'])
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'check')
      .executeTakeFirstOrThrow();
    expect(check).toEqual({ error: { name: 'SkipTaskError', message: REASON }, result: null });
    const attempts = await rt.db.selectFrom('attempts').select(['outcome', 'error']).execute();
    expect(attempts.filter((a) => a.outcome === 'skipped')).toEqual([{ outcome: 'skipped', error: { name: 'SkipTaskError', message: REASON } }]);
    expect(await rt.db.selectFrom('dead_letters').selectAll().execute()).toEqual([]);

    // Visible where a run is looked at: its page and the metrics.
    const app = await createServer(rt);
    try {
      const page = await app.inject({ method: 'GET', url: `/runs/${run.id}` });
      expect(page.body).toContain(`skipped: ${REASON.replace(/'/g, '&#39;')}`);
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      expect(metrics).toMatch(/^hubflow_task_attempts_total\{dag="skipping",outcome="skipped"\} 1$/m);
    } finally {
      await app.close();
    }
  });
});

describe('ctx.skip(reason)', () => {
  it('ends the task skipped with its reason, never retried; without it the task runs', async () => {
    const skipped = await rt.engine.triggerRun('ctx-skipping');
    expect((await waitForRun(rt, skipped.id)).state).toBe('success');
    expect(await taskStates(rt, skipped.id)).toEqual({ load: 'skipped', publish: 'skipped' });
    const load = await rt.db
      .selectFrom('task_instances')
      .select(['error', 'try_number'])
      .where('run_id', '=', skipped.id)
      .where('task_id', '=', 'load')
      .executeTakeFirstOrThrow();
    expect(load).toEqual({ error: { name: 'SkipTaskError', message: 'no snapshot named in the conf' }, try_number: 1 });

    const ran = await rt.engine.triggerRun('ctx-skipping', { conf: { snapshot: '2026-01-03' } });
    expect((await waitForRun(rt, ran.id)).state).toBe('success');
    expect(await taskStates(rt, ran.id)).toEqual({ load: 'success', publish: 'success' });
  });
});
