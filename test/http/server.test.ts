import { createServer as createNetServer } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { defineDag, PermanentError, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { DagDefinitionError } from '../../core/errors.ts';
import { createServer, startServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { openStore } from '../../server/store/db.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { etl, quick } from './server-support.ts';

// Its own DAG, so the metric counts below are exactly this DAG's attempts.
const measured = defineDag({
  id: 'http-measured',
  retry: { attempts: 2, base: '0s', max: '0s', jitter: 'none' },
  tasks: {
    first: task({ run: quick(1) }),
    flaky: task({
      after: ['first'],
      run: (ctx) => {
        if (ctx.tryNumber === 1) throw new Error('transient');
        return 'ok';
      },
    }),
  },
});

const doomed = defineDag({
  id: 'http-doomed',
  retry: { attempts: 1 },
  tasks: { fail: task({ run: () => Promise.reject(new PermanentError('bad record')) }) },
});

const broken = new DagDefinitionError('dags/broken.ts', 'broken', 'schedule.cron', "'61 * * * *': minute out of range");

function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  const wanted = Object.entries(labels).map(([k, v]) => `${k}="${v}"`);
  for (const line of text.split('\n')) {
    const match = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!match || match[1] !== name) continue;
    const have = match[2]!.split(',');
    if (wanted.every((w) => have.includes(w))) return Number(match[3]);
  }
  return undefined;
}

describe('the HTTP server', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  let worker: Executor;

  beforeAll(async () => {
    rt = await testRuntime({ dags: new Map([etl, measured, doomed].map((d) => [d.id, d])), resources: new Map(), errors: [broken] });
    app = await createServer(rt);
    worker = startWorker(rt, { concurrency: 4 });
  });
  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await rt?.close();
  });

  it('lists the loaded DAGs and the files that failed to load', async () => {
    await rt.db.updateTable('dags').set({ is_paused: true }).where('dag_id', '=', 'http-doomed').execute();
    const res = await app.inject({ method: 'GET', url: '/api/dags' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ dags: { id: string; is_paused: boolean }[]; errors: unknown[] }>();
    expect(body.dags.map((d) => d.id)).toEqual(['http-doomed', 'http-etl', 'http-measured']);
    expect(body.dags.find((d) => d.id === 'http-etl')).toEqual({
      id: 'http-etl',
      description: 'extract, transform, load',
      owner: 'data-team',
      schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      catchup: false,
      maxActiveRuns: 16,
      tags: ['master-data'],
      file: null,
      is_paused: false,
      tasks: [
        { id: 'extract', upstream: [], trigger: 'all_success', map: null },
        { id: 'transform', upstream: ['extract'], trigger: 'all_success', map: 'extract' },
        { id: 'load', upstream: ['transform'], trigger: 'all_done', map: null },
      ],
    });
    expect(body.dags.find((d) => d.id === 'http-doomed')?.is_paused).toBe(true);
    expect(body.errors).toEqual([{ file: 'dags/broken.ts', dagId: 'broken', field: 'schedule.cron', message: broken.message, problem: broken.problem }]);
  });

  it('triggers a run, and shows it with its task instances and attempts once it has run', async () => {
    const logicalDate = '2024-03-01T03:00:00.000Z';
    const created = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload: { logicalDate, conf: { source: 'api' } } });
    expect(created.statusCode).toBe(201);
    const run = created.json<{ id: number; dag_id: string; logical_date: string; run_type: string; conf: unknown }>();
    expect(run).toMatchObject({ dag_id: 'http-etl', logical_date: logicalDate, run_type: 'manual', conf: { source: 'api' } });
    expect((await waitForRun(rt, run.id)).state).toBe('success');

    const list = await app.inject({ method: 'GET', url: '/api/runs?dag=http-etl&state=success' });
    expect(list.statusCode).toBe(200);
    expect(list.json<{ runs: { id: number; state: string }[] }>().runs).toEqual([expect.objectContaining({ id: run.id, state: 'success' })]);

    const detail = await app.inject({ method: 'GET', url: `/api/runs/${run.id}` });
    expect(detail.statusCode).toBe(200);
    const body = detail.json<{
      run: { id: number; state: string };
      task_instances: {
        task_id: string;
        map_index: number;
        state: string;
        try_number: number;
        attempts: { try_number: number; outcome: string; worker: string }[];
      }[];
    }>();
    expect(body.run).toMatchObject({ id: run.id, state: 'success' });
    const names = body.task_instances.map((t) => (t.map_index >= 0 ? `${t.task_id}[${t.map_index}]` : t.task_id)).sort();
    expect(names).toEqual(['extract', 'load', 'transform[0]', 'transform[1]']);
    for (const ti of body.task_instances) {
      expect(ti).toMatchObject({ state: 'success', try_number: 1 });
      expect(ti.attempts).toEqual([expect.objectContaining({ try_number: 1, outcome: 'success', worker: expect.any(String) })]);
    }
    expect(body.task_instances[0]).toHaveProperty('next_try_at', null);
    expect(body.task_instances[0]).toHaveProperty('max_tries');
  });

  it('newest runs first, with a limit', async () => {
    const dates = ['2024-04-01T00:00:00Z', '2024-04-02T00:00:00Z', '2024-04-03T00:00:00Z'];
    const ids: number[] = [];
    for (const logicalDate of dates) {
      const res = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload: { logicalDate } });
      ids.push(res.json<{ id: number }>().id);
    }
    for (const id of ids) await waitForRun(rt, id);
    const res = await app.inject({ method: 'GET', url: '/api/runs?dag=http-etl&limit=2' });
    expect(res.json<{ runs: { id: number }[] }>().runs.map((r) => r.id)).toEqual([ids[2], ids[1]]);
  });

  it('answers 404, 409 and 400 with JSON errors', async () => {
    const unknownRun = await app.inject({ method: 'GET', url: '/api/runs/99999999' });
    expect(unknownRun.statusCode).toBe(404);
    expect(unknownRun.json()).toMatchObject({ statusCode: 404, message: 'no run 99999999' });
    expect((await app.inject({ method: 'GET', url: '/api/runs/abc' })).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/api/runs/1.5' })).statusCode).toBe(400);

    const unknownDag = await app.inject({ method: 'POST', url: '/api/dags/nope/runs', payload: {} });
    expect(unknownDag.statusCode).toBe(404);
    expect(unknownDag.json<{ message: string }>().message).toMatch(/nope/);

    const logicalDate = '2024-05-01T00:00:00Z';
    const first = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload: { logicalDate } });
    expect(first.statusCode).toBe(201);
    await waitForRun(rt, first.json<{ id: number }>().id);
    const duplicate = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload: { logicalDate: '2024-05-01T02:00:00+02:00' } });
    expect(duplicate.statusCode).toBe(409);
    expect(duplicate.json()).toMatchObject({ statusCode: 409, error: 'Conflict' });

    const dateOnly = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload: { logicalDate: '2024-07-01' } });
    expect(dateOnly.statusCode).toBe(201);
    expect(dateOnly.json()).toMatchObject({ logical_date: '2024-07-01T00:00:00.000Z' });
    await waitForRun(rt, dateOnly.json<{ id: number }>().id);
    // No options: an empty JSON body; without the content type a form or a beacon could send it.
    expect((await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs' })).statusCode).toBe(415);
    const noBody = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', headers: { 'content-type': 'application/json' } });
    expect(noBody.statusCode).toBe(201);
    await waitForRun(rt, noBody.json<{ id: number }>().id);

    for (const payload of [
      { logicalDate: 'yesterday' },
      { logicalDate: '2024-05-01T00:00:00' },
      { conf: 'x' },
      { conf: [1] },
      { logicalDate: '2024-05-01T00:00:00Z', extra: 1 },
    ]) {
      const res = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload });
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
      expect(res.json<{ issues: unknown[] }>().issues.length).toBeGreaterThan(0);
    }
    const notJson = await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', headers: { 'content-type': 'application/json' }, payload: '{nope' });
    expect(notJson.statusCode).toBe(400);
    expect(notJson.json()).toMatchObject({ statusCode: 400 });

    expect((await app.inject({ method: 'GET', url: '/api/runs?state=bogus' })).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/api/runs?limit=0' })).statusCode).toBe(400);
    expect((await app.inject({ method: 'GET', url: '/api/runs?limit=100000' })).statusCode).toBe(200);
  });

  it('derives Prometheus metrics from the store, each finished attempt counted once', async () => {
    const ok = await rt.engine.triggerRun('http-measured', { runType: 'scheduled' });
    const failed = await rt.engine.triggerRun('http-doomed');
    expect((await waitForRun(rt, ok.id)).state).toBe('success');
    expect((await waitForRun(rt, failed.id)).state).toBe('failed');

    const scrape = async () => {
      const res = await app.inject({ method: 'GET', url: '/metrics' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toMatch(/^text\/plain/);
      return res.body;
    };
    for (const text of [await scrape(), await scrape()]) {
      // first (1 success) and flaky (a retry, then a success): three attempts, two first tries.
      expect(sample(text, 'hubflow_task_duration_seconds_count', { dag: 'http-measured', task: 'flaky', outcome: 'retry' })).toBe(1);
      expect(sample(text, 'hubflow_task_duration_seconds_count', { dag: 'http-measured', task: 'flaky', outcome: 'success' })).toBe(1);
      expect(sample(text, 'hubflow_task_duration_seconds_count', { dag: 'http-measured', task: 'first', outcome: 'success' })).toBe(1);
      expect(sample(text, 'hubflow_task_attempts_total', { dag: 'http-measured', outcome: 'success' })).toBe(2);
      expect(sample(text, 'hubflow_task_retries_total', { dag: 'http-measured' })).toBe(1);
      expect(sample(text, 'hubflow_handoff_delay_seconds_count', { dag: 'http-measured' })).toBe(2);
      expect(sample(text, 'hubflow_handoff_delay_seconds_bucket', { dag: 'http-measured', le: '+Inf' })).toBe(2);
      expect(sample(text, 'hubflow_schedule_delay_seconds_count', { dag: 'http-measured' })).toBe(1);
      expect(sample(text, 'hubflow_schedule_delay_seconds_count', { dag: 'http-doomed' })).toBeUndefined();
      expect(sample(text, 'hubflow_runs_total', { dag: 'http-measured', state: 'success' })).toBe(1);
      expect(sample(text, 'hubflow_runs_total', { dag: 'http-doomed', state: 'failed' })).toBe(1);
      expect(sample(text, 'hubflow_task_attempts_total', { dag: 'http-doomed', outcome: 'failed' })).toBe(1);
      expect(sample(text, 'hubflow_dead_letters', { dag: 'http-doomed' })).toBe(1);
      expect(sample(text, 'hubflow_dead_letters', { dag: 'http-measured' })).toBe(0);
      expect(sample(text, 'hubflow_dead_letter_oldest_age_seconds', { dag: 'http-doomed' })).toBeGreaterThanOrEqual(0);
      expect(sample(text, 'hubflow_runs_active', { dag: 'http-measured', state: 'running' })).toBe(0);
      expect(text).toMatch(/^hubflow_queue_jobs\{state="completed"\} \d+$/m);
    }
  });

  it('serves bull-board for the task queue at /admin/queues', async () => {
    const res = await app.inject({ method: 'GET', url: '/admin/queues' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/text\/html/);
    // Its assets come through @fastify/static (and content-disposition 3, an ESM package it requires).
    expect(res.body).toContain('<base href="/admin/queues/"');
    const asset = /src="(static\/js\/[^"]+\.js)"/.exec(res.body)?.[1];
    expect(asset).toBeDefined();
    const script = await app.inject({ method: 'GET', url: `/admin/queues/${asset}` });
    expect(script.statusCode).toBe(200);
    expect(script.headers['content-type']).toMatch(/javascript/);
    const queues = await app.inject({ method: 'GET', url: '/admin/queues/api/queues' });
    expect(queues.statusCode).toBe(200);
    expect(queues.json<{ queues: { name: string }[] }>().queues.map((q) => q.name)).toEqual(['tasks']);
  });

  it('renders the run list and a run page, escaping what it shows', async () => {
    const created = await app.inject({
      method: 'POST',
      url: '/api/dags/http-etl/runs',
      payload: { logicalDate: '2024-06-01T00:00:00Z', conf: { note: '<script>alert(1)</script>' } },
    });
    const { id } = created.json<{ id: number }>();
    await waitForRun(rt, id);

    const index = await app.inject({ method: 'GET', url: '/' });
    expect(index.statusCode).toBe(200);
    expect(index.headers['content-type']).toMatch(/text\/html/);
    expect(index.body).toContain('http-etl');
    expect(index.body).toContain('dags/broken.ts');
    expect(index.body).toContain('minute out of range');
    expect(index.body).toMatch(/<a href="\/dags\/http-doomed"><strong>http-doomed<\/strong><\/a> <span class="paused">paused/);
    expect(index.body).toContain(`href="/runs/${id}"`);

    const page = await app.inject({ method: 'GET', url: `/runs/${id}` });
    expect(page.statusCode).toBe(200);
    // Mapped instances are labelled by their item, their index beside it.
    for (const row of ['<code>extract</code>', '<code>transform</code> a <span class="muted">[0]</span>', '<code>transform</code> b', '<code>load</code>'])
      expect(page.body).toContain(row);
    expect(page.body).toContain('href="/admin/queues');
    // The scripts are the live refresh's and the action buttons' (loopback, no token: may act), each allowed by its hash alone.
    expect(page.body.match(/<script>/g)).toHaveLength(2);
    expect(page.headers['content-security-policy']).toMatch(/script-src 'sha256-[A-Za-z0-9+/]+=*' 'sha256-[A-Za-z0-9+/]+=*';/);
    expect(page.body).not.toContain('<script>alert(1)');
    expect(page.body).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(page.headers['content-security-policy']).toContain("default-src 'none'");

    expect((await app.inject({ method: 'GET', url: '/runs/99999999' })).statusCode).toBe(404);
    expect((await app.inject({ method: 'GET', url: '/runs/x' })).statusCode).toBe(400);
  });

  it('reports health, and which store failed', async () => {
    const ok = await app.inject({ method: 'GET', url: '/healthz' });
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toEqual({ ok: true });

    // Nothing listens on port 1: PostgreSQL fails, Redis (the runtime's own queue) still answers.
    const deadDb = openStore('postgres://postgres@127.0.0.1:1/none', 'none', 1);
    const sick = await createServer({ ...rt, db: deadDb });
    try {
      const res = await sick.inject({ method: 'GET', url: '/healthz' });
      expect(res.statusCode).toBe(503);
      expect(res.json()).toEqual({ ok: false, failed: ['postgres'] });
    } finally {
      await sick.close();
      await deadDb.destroy();
    }
  });

  it('refuses to listen beyond loopback without a token, and listens on loopback', async () => {
    await expect(startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '0.0.0.0' } })).rejects.toThrow(/HUBFLOW_API_TOKEN/);
    const server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    try {
      expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${server.url}/api/dags`);
      expect(res.status).toBe(200);
    } finally {
      await server.close();
    }
  });

  it('moves to a free port when asked to and its own is taken', async () => {
    const blocker = createNetServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const address = blocker.address();
    const taken = typeof address === 'object' && address ? address.port : 0;
    const config = { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: taken };
    try {
      await expect(startServer({ ...rt, config })).rejects.toMatchObject({ code: 'EADDRINUSE' });
      const server = await startServer({ ...rt, config }, { fallbackToFreePort: true });
      expect(server.url).not.toContain(`:${taken}`);
      expect((await fetch(`${server.url}/healthz`)).status).toBe(200);
      await server.close();
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });
});
