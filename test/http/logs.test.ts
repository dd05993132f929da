import { defineDag, task } from 'hubflow';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const TOKEN = 'operator-token-0123456789abcdef';
const READ = 'read-only-token-0123456789abcdef';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

const dag = defineDag({
  id: 'http-logs',
  tasks: {
    tenants: task({ run: () => [{ tenant: 'acme' }, { tenant: '<globex>' }] }),
    load: task<{ tenant: string }>({
      map: 'tenants',
      retry: { attempts: 2, base: '0s' },
      run: (ctx) => {
        ctx.log.info(`loading <b>${ctx.item.tenant}</b> on try ${ctx.tryNumber}`);
        if (ctx.item.tenant === '<globex>' && ctx.tryNumber === 1) throw new Error('reset by <peer>');
      },
    }),
  },
});

interface LogAnswer {
  task: string;
  map_index: number;
  item: string | null;
  try: number;
  tries: { try_number: number; outcome: string; lines: number }[];
  lines: { seq: number; level: string; line: string; at: string }[];
}

let rt: TestRuntime;
let worker: Executor;
let app: FastifyInstance;
let runId: number;
beforeAll(async () => {
  rt = await testRuntime([dag], { HUBFLOW_API_TOKEN: TOKEN, HUBFLOW_API_READ_TOKEN: READ });
  worker = startWorker(rt);
  const run = await rt.engine.triggerRun('http-logs');
  runId = run.id;
  expect((await waitForRun(rt, run.id)).state).toBe('success');
  app = await createServer(rt);
});
afterAll(async () => {
  await app?.close();
  await worker?.close();
  await rt?.close();
});

const get = (url: string, token = READ) => app.inject({ method: 'GET', url, headers: bearer(token) });

describe('GET /api/runs/:id/tasks/:task/logs', () => {
  it('gives the read-only token the latest try of an instance, or the one asked for, with its lines', async () => {
    const latest = await get(`/api/runs/${runId}/tasks/load/logs?map=1`);
    expect(latest.statusCode).toBe(200);
    const body = latest.json<LogAnswer>();
    expect(body).toMatchObject({ task: 'load', map_index: 1, item: '<globex>', try: 2 });
    expect(body.tries.map((t) => [t.try_number, t.outcome, t.lines])).toEqual([
      [1, 'retry', 2],
      [2, 'success', 1],
    ]);
    expect(body.lines.map((l) => [l.seq, l.level, l.line])).toEqual([[1, 'info', 'loading <b><globex></b> on try 2']]);

    const first = (await get(`/api/runs/${runId}/tasks/load/logs?map=1&try=1`)).json<LogAnswer>();
    expect(first.lines.map((l) => l.level)).toEqual(['info', 'error']);
    expect(first.lines[1]!.line).toMatch(/^try 1 of 2 failed: Error: reset by <peer>/);
  });

  it('answers 404 naming what is missing, and 400 for a query it cannot read', async () => {
    const cases: [string, number, string][] = [
      [`/api/runs/999999/tasks/load/logs`, 404, 'no run 999999'],
      [`/api/runs/${runId}/tasks/nope/logs`, 404, `run ${runId} (DAG 'http-logs') has no task 'nope'`],
      [`/api/runs/${runId}/tasks/load/logs`, 404, `task 'load' of run ${runId} is mapped over 2 items: name one with map index 0 to 1`],
      [`/api/runs/${runId}/tasks/tenants/logs?try=5`, 404, `task 'tenants' of run ${runId} has no try 5: its tries are 1 to 1`],
      [`/api/runs/${runId}/tasks/tenants/logs?try=first`, 400, 'invalid query'],
      [`/api/runs/x/tasks/tenants/logs`, 400, "run id must be a positive integer, not 'x'"],
    ];
    for (const [url, status, message] of cases) {
      const res = await get(url);
      expect([url, res.statusCode, res.json<{ message: string }>().message]).toEqual([url, status, message]);
    }
  });

  it('needs a token like every other read', async () => {
    expect((await app.inject({ method: 'GET', url: `/api/runs/${runId}/tasks/tenants/logs` })).statusCode).toBe(401);
  });
});

describe('the log page', () => {
  it('is linked from the run page for every instance that has started', async () => {
    const page = (await get(`/runs/${runId}`)).body;
    expect(page).toContain(`href="/runs/${runId}/tasks/tenants/logs">log</a>`);
    expect(page).toContain(`href="/runs/${runId}/tasks/load/logs?map=1">log</a>`);
  });

  it('shows a try escaped, with links to the other tries and to the other instances by their item', async () => {
    const res = await get(`/runs/${runId}/tasks/load/logs?map=1&try=1`);
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    const body = res.body;
    expect(body).toContain('loading &lt;b&gt;&lt;globex&gt;&lt;/b&gt; on try 1');
    expect(body).not.toContain('<b><globex>');
    expect(body).toContain('reset by &lt;peer&gt;');
    expect(body).toContain(`<strong data-try="1">`);
    expect(body).toContain(`<a data-try="2" href="/runs/${runId}/tasks/load/logs?map=1&amp;try=2">`);
    expect(body).toMatch(new RegExp(`<a data-map="0" href="/runs/${runId}/tasks/load/logs\\?map=0">\\[0\\] acme`));
    expect(body).toContain('<strong data-map="1">[1] &lt;globex&gt;');
  });

  it('opens the first instance of a mapped task when none is named, and says what is missing with a 404', async () => {
    expect((await get(`/runs/${runId}/tasks/load/logs`)).body).toContain('<strong data-map="0">[0] acme');
    const missing = await get(`/runs/${runId}/tasks/load/logs?map=7`);
    expect(missing.statusCode).toBe(404);
    expect(missing.body).toContain(`task &#39;load&#39; of run ${runId} has no map index 7: its instances are 0 to 1.`);
    expect((await get(`/runs/${runId}/tasks/load/logs?try=0`)).statusCode).toBe(400);
  });
});
