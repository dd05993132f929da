import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import { startWorker } from '../../server/processes.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let worker: Executor;
afterEach(async () => {
  await worker?.close();
  await rt?.close();
  rt = undefined;
});

describe('a diamond DAG (B and C after A, D after B and C)', () => {
  it('runs D exactly once, after both B and C have finished', async () => {
    const events: string[] = [];
    const step = (name: string, ms: number) => async () => {
      events.push(`${name}:start`);
      await new Promise((r) => setTimeout(r, ms));
      events.push(`${name}:end`);
      return { name };
    };
    const dag = defineDag({
      id: 'diamond',
      tasks: {
        a: task({ run: step('a', 5) }),
        b: task({ after: ['a'], run: step('b', 40) }),
        c: task({ after: ['a'], run: step('c', 5) }),
        d: task({
          after: ['b', 'c'],
          run: async (ctx) => {
            events.push('d:start');
            return [await ctx.upstream('b'), await ctx.upstream('c')];
          },
        }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 4 });
    const run = await rt.engine.triggerRun('diamond');
    expect((await waitForRun(rt, run.id)).state).toBe('success');

    expect(events.filter((e) => e === 'd:start')).toHaveLength(1);
    expect(events.indexOf('d:start')).toBeGreaterThan(events.indexOf('b:end'));
    expect(events.indexOf('d:start')).toBeGreaterThan(events.indexOf('c:end'));
    const d = await rt.db
      .selectFrom('task_instances')
      .select(['result', 'try_number'])
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'd')
      .executeTakeFirstOrThrow();
    expect(d.result).toEqual([{ name: 'b' }, { name: 'c' }]);
    expect(d.try_number).toBe(1);
    const attempts = await rt.db
      .selectFrom('attempts')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .executeTakeFirstOrThrow();
    expect(Number(attempts.n)).toBe(4);
  });

  it('fans out over an upstream list and fans back in', async () => {
    const dag = defineDag({
      id: 'mapped',
      tasks: {
        tenants: task({ run: () => ['acme', 'globex', 'initech'] }),
        extract: task<string>({ map: 'tenants', run: (ctx) => ({ tenant: ctx.item, rows: ctx.item.length }) }),
        total: task({
          after: ['extract'],
          run: async (ctx) => (await ctx.upstream<{ rows: number }[]>('extract')).reduce((n, r) => n + r.rows, 0),
        }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 4 });
    const run = await rt.engine.triggerRun('mapped');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({
      tenants: 'success',
      'extract[0]': 'success',
      total: 'success',
      'extract[1]': 'success',
      'extract[2]': 'success',
    });
    const total = await rt.db
      .selectFrom('task_instances')
      .select('result')
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'total')
      .executeTakeFirstOrThrow();
    expect(total.result).toBe(4 + 6 + 7);
  });

  it('runs every item of a map wider than one enqueue slice exactly once, and fans in over all of them', async () => {
    const width = 2_345;
    const seen: number[] = [];
    const dag = defineDag({
      id: 'wide',
      tasks: {
        list: task({ run: () => Array.from({ length: width }, (_, i) => i) }),
        square: task<number>({
          map: 'list',
          run: (ctx) => {
            seen.push(ctx.item);
            return ctx.item * ctx.item;
          },
        }),
        sum: task({ after: ['square'], run: async (ctx) => (await ctx.upstream<number[]>('square')).reduce((a, b) => a + b, 0) }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 20 });
    const run = await rt.engine.triggerRun('wide');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: width }, (_, i) => i));
    const sum = await rt.db.selectFrom('task_instances').select('result').where('run_id', '=', run.id).where('task_id', '=', 'sum').executeTakeFirstOrThrow();
    expect(sum.result).toBe(((width - 1) * width * (2 * width - 1)) / 6);
  });
});
