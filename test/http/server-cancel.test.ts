import type { FastifyInstance } from 'fastify';
import { defineDag, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

describe('cancelling runs through the API', () => {
  const held = defineDag({
    id: 'http-held',
    maxActiveRuns: 1,
    tasks: { hold: task({ run: (ctx) => new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason))) }) },
  });
  let rt: TestRuntime;
  let app: FastifyInstance;
  let worker: Executor;
  beforeAll(async () => {
    rt = await testRuntime([held]);
    app = await createServer(rt);
    worker = startWorker(rt);
  });
  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await rt?.close();
  });

  it('cancels a running run (its task aborted), then the queued runs of a DAG; 404, 409 and 400 otherwise', async () => {
    const ids: number[] = [];
    for (const logicalDate of ['2024-01-01', '2024-01-02', '2024-01-03']) {
      ids.push((await app.inject({ method: 'POST', url: '/api/dags/http-held/runs', payload: { logicalDate } })).json<{ id: number }>().id);
    }
    for (;;) {
      const ti = await rt.db.selectFrom('task_instances').select('state').where('run_id', '=', ids[0]!).executeTakeFirstOrThrow();
      if (ti.state === 'running') break;
      await new Promise((r) => setTimeout(r, 25));
    }
    const cancelled = await app.inject({ method: 'POST', url: `/api/runs/${ids[0]}/cancel`, payload: { reason: 'bad input file' } });
    expect(cancelled.statusCode).toBe(200);
    expect(cancelled.json()).toMatchObject({ id: ids[0], dagId: 'http-held', was: 'running', tasks: 1, interrupted: 1 });
    const detail = (await app.inject({ method: 'GET', url: `/api/runs/${ids[0]}` })).json<{ run: unknown; task_instances: unknown[] }>();
    expect(detail.run).toMatchObject({ state: 'cancelled', cancel_reason: 'bad input file' });
    expect(detail.task_instances).toEqual([expect.objectContaining({ state: 'cancelled', attempts: [expect.objectContaining({ outcome: 'cancelled' })] })]);
    for (;;) {
      const attempt = await rt.db
        .selectFrom('attempts')
        .select('outcome')
        .where('ti_id', 'in', rt.db.selectFrom('task_instances').select('id').where('run_id', '=', ids[1]!))
        .executeTakeFirst();
      if (attempt) break; // the freed slot went to the next run, which is running its task
      await new Promise((r) => setTimeout(r, 25));
    }

    expect((await app.inject({ method: 'POST', url: `/api/runs/${ids[0]}/cancel`, payload: {} })).statusCode).toBe(409);
    expect((await app.inject({ method: 'POST', url: '/api/runs/99999999/cancel', payload: {} })).statusCode).toBe(404);
    expect((await app.inject({ method: 'POST', url: '/api/runs/abc/cancel', payload: {} })).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: `/api/runs/${ids[1]}/cancel`, payload: { why: 'x' } })).statusCode).toBe(400);
    expect((await app.inject({ method: 'POST', url: '/api/dags/nope/runs/cancel', payload: {} })).statusCode).toBe(404);

    const queued = await app.inject({ method: 'POST', url: '/api/dags/http-held/runs/cancel', payload: { state: 'queued' } });
    expect(queued.statusCode).toBe(200);
    expect(queued.json<{ cancelled: { id: number }[] }>().cancelled.map((r) => r.id)).toEqual([ids[2]]);
    const all = await app.inject({ method: 'POST', url: '/api/dags/http-held/runs/cancel', headers: { 'content-type': 'application/json' } });
    expect(all.json<{ cancelled: { id: number; was: string }[] }>().cancelled).toEqual([expect.objectContaining({ id: ids[1], was: 'running' })]);
    const states = await rt.db.selectFrom('dag_runs').select('state').where('dag_id', '=', 'http-held').execute();
    expect(states.map((r) => r.state)).toEqual(['cancelled', 'cancelled', 'cancelled']);
  });
});
