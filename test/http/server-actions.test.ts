import type { FastifyInstance } from 'fastify';
import { defineDag, PermanentError, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let flakyFails = true;
const repairable = defineDag({
  id: 'http-repairable',
  retry: { attempts: 1 },
  tasks: {
    flaky: task({
      run: () => {
        if (flakyFails) throw new PermanentError('the input file is not there yet');
        return 'ok';
      },
    }),
    after: task({ after: ['flaky'], run: () => 'done' }),
  },
});

describe('acting through the API, watching in bull-board', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  let worker: Executor;
  beforeAll(async () => {
    rt = await testRuntime([repairable]);
    app = await createServer(rt);
    worker = startWorker(rt);
  });
  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await rt?.close();
  });

  const post = (url: string, payload: unknown = {}) => app.inject({ method: 'POST', url, payload: payload as object });

  it('retries a failed task (a clear of it) and clears named tasks; bull-board cannot retry behind the store', async () => {
    const run = await rt.engine.triggerRun('http-repairable');
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    const detail = (await app.inject({ method: 'GET', url: `/api/runs/${run.id}` })).json<{ task_instances: { task_id: string; job_id: string }[] }>();
    const job = detail.task_instances.find((t) => t.task_id === 'flaky')!.job_id;
    const boardRetry = await app.inject({ method: 'PUT', url: `/admin/queues/api/queues/tasks/${encodeURIComponent(job)}/retry`, payload: {} });
    expect(boardRetry.statusCode).toBe(405);
    expect(await taskStates(rt, run.id)).toEqual({ flaky: 'failed', after: 'upstream_failed' });

    const notFailed = await post(`/api/runs/${run.id}/tasks/after/retry`);
    expect(notFailed.statusCode).toBe(409);
    expect(notFailed.json<{ message: string }>().message).toMatch(/task 'after' of run \d+ has not failed \(it is upstream_failed\)/);
    expect((await post(`/api/runs/${run.id}/tasks/nope/retry`)).statusCode).toBe(404);
    expect((await post(`/api/runs/99999999/tasks/flaky/retry`)).statusCode).toBe(404);
    expect((await post(`/api/runs/${run.id}/tasks/flaky/retry`, { force: true })).statusCode).toBe(400);

    flakyFails = false;
    const retried = await post(`/api/runs/${run.id}/tasks/flaky/retry`);
    expect(retried.statusCode).toBe(200);
    expect(retried.json<{ cleared: string[] }>().cleared.sort()).toEqual(['after', 'flaky']);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const tries = await rt.db
      .selectFrom('attempts')
      .innerJoin('task_instances as ti', 'ti.id', 'attempts.ti_id')
      .select(['ti.task_id', 'attempts.outcome'])
      .where('ti.run_id', '=', run.id)
      .execute();
    expect(tries.filter((t) => t.task_id === 'flaky').map((t) => t.outcome)).toEqual(['failed', 'success']);
    expect((await post(`/api/runs/${run.id}/tasks/flaky/retry`)).statusCode).toBe(409);

    const cleared = await post(`/api/runs/${run.id}/clear`, { tasks: ['after'] });
    expect(cleared.statusCode).toBe(200);
    expect(cleared.json()).toEqual({ cleared: ['after'] });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect((await post(`/api/runs/${run.id}/clear`, { tasks: 'after' })).statusCode).toBe(400);
    expect((await post(`/api/runs/${run.id}/clear`, { tasks: ['nope'] })).statusCode).toBe(404);
    expect((await post('/api/runs/99999999/clear')).statusCode).toBe(404);
  });

  it('answers a conf nested thousands deep, malformed JSON and refused input with 400, not 500', async () => {
    // As text: the client's own JSON.stringify would overflow its stack on such an object.
    const bomb = `{"conf":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`;
    const deep = await app.inject({ method: 'POST', url: '/api/dags/http-repairable/runs', headers: { 'content-type': 'application/json' }, payload: bomb });
    expect(deep.statusCode).toBe(400);
    expect(deep.json<{ message: string }>().message).toBe('the request body nests deeper than 64 levels');
    const arrays = await app.inject({
      method: 'POST',
      url: '/api/dags/http-repairable/runs',
      headers: { 'content-type': 'application/json' },
      payload: `{"conf":{"x":${'['.repeat(100_000)}${']'.repeat(100_000)}}}`,
    });
    expect(arrays.statusCode).toBe(400);
    // Wide is fine: half a million elements, one level deep, refused by the schema, not by a crash.
    const wide = await app.inject({
      method: 'POST',
      url: '/api/dags/http-repairable/runs',
      headers: { 'content-type': 'application/json' },
      payload: `{"conf":[${'0,'.repeat(499_999)}0]}`,
    });
    expect(wide.statusCode).toBe(400);
    expect(wide.json<{ issues: { path: string }[] }>().issues[0]?.path).toBe('conf');
    for (const payload of ['{"conf":', '{"conf":{"__proto__":{"x":1}}}', '\u0000']) {
      const res = await app.inject({ method: 'POST', url: '/api/dags/http-repairable/runs', headers: { 'content-type': 'application/json' }, payload });
      expect(res.statusCode, payload).toBe(400);
    }
    expect(await rt.db.selectFrom('dag_runs').select('id').where('run_type', '=', 'manual').execute()).toHaveLength(1);

    // The engine's refusal of an input (InvalidInputError, by name) reaches the client as 400 with its message.
    const probe = await createServer(rt);
    probe.post('/probe', async () => {
      throw Object.assign(new Error('conf.note: holds \\u0000, which PostgreSQL cannot store'), { name: 'InvalidInputError' });
    });
    const refused = await probe.inject({ method: 'POST', url: '/probe', payload: {} });
    await probe.close();
    expect(refused.statusCode).toBe(400);
    expect(refused.json()).toEqual({ statusCode: 400, error: 'Bad Request', message: 'conf.note: holds \\u0000, which PostgreSQL cannot store' });
  });
});
