import type { FastifyInstance } from 'fastify';
import { defineDag, task } from 'hubflow';
import { afterEach, describe, expect, it } from 'vitest';
import { MAX_PLANNED_RUNS, plannedRuns } from '../../server/engine/collisions.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { registryOf } from '../../server/engine/loader.ts';
import { MAX_BACKFILL_RUNS } from '../../server/engine/runs.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let app: FastifyInstance | undefined;
let worker: Executor | undefined;
afterEach(async () => {
  await app?.close();
  await worker?.close();
  await rt?.close();
  rt = app = worker = undefined;
});

function nested(depth: number): Record<string, unknown> {
  let conf: Record<string, unknown> = { leaf: true };
  for (let i = 0; i < depth; i++) conf = { a: conf };
  return conf;
}

describe("a triggered run's conf", () => {
  it('nested too deep or holding characters the store cannot keep is refused with a 400 naming the place, and no run is made', async () => {
    rt = await testRuntime([defineDag({ id: 'conf-dag', tasks: { only: task({ run: () => 1 }) } })]);
    app = await createServer(rt);
    const post = (payload: string) => app!.inject({ method: 'POST', url: '/api/dags/conf-dag/runs', headers: { 'content-type': 'application/json' }, payload });
    // Written out: JSON.stringify itself runs out of stack on 5,000 levels.
    const deep = await post(`{"conf": ${'{"a": '.repeat(5_000)}1${'}'.repeat(5_000)}}`);
    expect(deep.statusCode).toBe(400);
    // The server's body parser refuses it before the engine sees it; the engine's own check is the same limit.
    expect(deep.json<{ message: string }>().message).toMatch(/nests deeper than 64 levels$/);
    const nul = await post('{"conf": {"note": "a\\u0000b"}}');
    expect(nul.statusCode).toBe(400);
    expect(nul.json<{ message: string }>().message).toBe("run of DAG 'conf-dag': conf.note holds the character U+0000, which the store cannot keep");
    const surrogate = await post('{"conf": {"list": ["ok", "\\ud800"]}}');
    expect(surrogate.statusCode).toBe(400);
    expect(surrogate.json<{ message: string }>().message).toBe(
      "run of DAG 'conf-dag': conf.list[1] holds a lone surrogate (U+D800), which the store cannot keep",
    );
    const key = await post('{"conf": {"k\\u0000": 1}}');
    expect(key.json<{ message: string }>().message).toBe("run of DAG 'conf-dag': conf has a key holding the character U+0000, which the store cannot keep");
    expect(await rt.db.selectFrom('dag_runs').select('id').execute()).toEqual([]);
    // Paired surrogates (an emoji) and ordinary nesting are kept as given.
    const fine = await post(JSON.stringify({ conf: { mood: '🙂', deep: nested(20) } }));
    expect(fine.statusCode).toBe(201);
    expect(fine.json<{ conf: unknown }>().conf).toEqual({ mood: '🙂', deep: nested(20) });
  });
});

describe("a task's result", () => {
  it('that the store cannot keep fails the task once, naming the task and the place, without running it again', async () => {
    const ran: Record<string, number> = {};
    const returning = (value: () => unknown) =>
      task({
        retry: { attempts: 3 },
        run: (ctx) => {
          ran[ctx.taskId] = (ran[ctx.taskId] ?? 0) + 1;
          return value();
        },
      });
    const cycle: Record<string, unknown> = { name: 'loop' };
    cycle.self = cycle;
    const dag = defineDag({
      id: 'results',
      tasks: {
        nul: returning(() => ({ rows: [{ name: 'a\u0000b' }] })),
        surrogate: returning(() => 'x\udc00'),
        bigint: returning(() => ({ total: 10n })),
        cycle: returning(() => cycle),
        // 400,000 UTF-16 units, 1,200,000 bytes of UTF-8.
        euros: returning(() => '€'.repeat(400_000)),
        emoji: returning(() => ({ mood: '🙂' })),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('results');
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    const rows = await rt.db.selectFrom('task_instances').select(['task_id', 'state', 'try_number', 'error', 'result']).where('run_id', '=', run.id).execute();
    const by = Object.fromEntries(rows.map((r) => [r.task_id, r]));
    const message = (taskId: string) => (by[taskId]!.error as { message: string }).message;
    const cannotKeep = (taskId: string) => `task '${taskId}' of DAG 'results' returned a result the store cannot keep: `;
    expect(message('nul')).toBe(`${cannotKeep('nul')}result.rows[0].name holds the character U+0000, which the store cannot keep`);
    expect(message('surrogate')).toBe(`${cannotKeep('surrogate')}result holds a lone surrogate (U+DC00), which the store cannot keep`);
    expect(message('bigint')).toBe(`${cannotKeep('bigint')}result cannot be written as JSON: Do not know how to serialize a BigInt`);
    expect(message('cycle')).toMatch(new RegExp(`^${cannotKeep('cycle')}result cannot be written as JSON: Converting circular structure to JSON`));
    expect(message('euros')).toBe(
      "task 'euros' of DAG 'results' returned a result of 1200002 bytes (JSON, UTF-8), more than 1000000: put bulk data in staging and return a reference",
    );
    for (const taskId of ['nul', 'surrogate', 'bigint', 'cycle', 'euros']) expect(by[taskId]).toMatchObject({ state: 'failed', try_number: 1 });
    expect(ran).toEqual({ nul: 1, surrogate: 1, bigint: 1, cycle: 1, euros: 1, emoji: 1 });
    expect(by.emoji).toMatchObject({ state: 'success', result: { mood: '🙂' } });
  });
});

describe('a backfill over a seconds schedule', () => {
  it('walks no further than it may create, and refuses a range of more intervals than that', async () => {
    const dag = defineDag({
      id: 'every-ten-seconds',
      schedule: { cron: '*/10 * * * * *', timezone: 'UTC', seconds: true },
      tasks: { only: task({ run: () => 1 }) },
    });
    rt = await testRuntime([dag]);
    // A year of a ten-second schedule: 3 million intervals.
    await expect(rt.engine.backfill('every-ten-seconds', new Date('2025-01-01T00:00:00Z'), new Date('2025-12-31T00:00:00Z'))).rejects.toThrow(
      `backfill of DAG 'every-ten-seconds' from 2025-01-01T00:00:00.000Z to 2025-12-31T00:00:00.000Z covers more than ${MAX_BACKFILL_RUNS} intervals: backfill it in parts`,
    );
    expect(await rt.db.selectFrom('dag_runs').select('id').execute()).toEqual([]);
    const minute = await rt.engine.backfill('every-ten-seconds', new Date('2025-01-01T00:00:00Z'), new Date('2025-01-01T00:00:59Z'));
    expect(minute).toHaveLength(6);
  });
});

describe('a windows check over a seconds schedule', () => {
  it('refuses a period with more runs than it could show, naming the DAG, and lists a short one', () => {
    const dag = defineDag({
      id: 'every-second',
      schedule: { cron: '* * * * * *', timezone: 'UTC', seconds: true },
      tasks: { only: task({ run: () => 1 }) },
    });
    const registry = registryOf([dag], []);
    // A year of a seconds schedule: 31 million runs, which the check once listed whole.
    expect(() => plannedRuns(registry, new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))).toThrow(
      `DAG 'every-second' has more than ${MAX_PLANNED_RUNS.toLocaleString('en')} scheduled runs from 2025-01-01T00:00:00.000Z to 2026-01-01T00:00:00.000Z: check a shorter period`,
    );
    expect(plannedRuns(registry, new Date('2025-01-01T00:00:00Z'), new Date('2025-01-01T00:01:00Z'))).toHaveLength(60);
  });
});
