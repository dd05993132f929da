import { defineDag, PermanentError, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { json, send } from './http-client.ts';

const failing = new Set<string>();
const dag = defineDag({
  id: 'http-acts',
  retry: { attempts: 1 },
  tasks: {
    tenants: task({ run: () => ['acme', 'globex'] }),
    extract: task<string>({
      map: 'tenants',
      run: (ctx) => {
        if (failing.has(ctx.item) || ctx.conf.fail === ctx.item) throw new PermanentError(`tenant ${ctx.item} unreachable`);
        return ctx.item;
      },
    }),
    load: task({ after: ['extract'], run: () => 'loaded' }),
  },
});

describe('operator actions through the API', () => {
  let rt: TestRuntime;
  let worker: Executor;
  let server: RunningServer;
  let day = 0;
  beforeAll(async () => {
    rt = await testRuntime([dag]);
    worker = startWorker(rt);
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
  });
  afterAll(async () => {
    await server?.close();
    await worker?.close();
    await rt?.close();
  });

  const post = async (path: string, body: unknown = {}) => {
    const res = await send(server.url, path, json(body));
    return { status: res.status, body: JSON.parse(res.body) as Record<string, unknown> };
  };
  const failedRun = async (tenant: string): Promise<number> => {
    const res = await post('/api/dags/http-acts/runs', { logicalDate: `2026-02-${String(++day).padStart(2, '0')}`, conf: { fail: tenant } });
    expect(res.status).toBe(201);
    const id = Number(res.body.id);
    expect((await waitForRun(rt, id)).state).toBe('failed');
    return id;
  };
  const letters = (runId: number) => rt.db.selectFrom('dead_letters').select(['map_index', 'resolution', 'resolved_by']).where('run_id', '=', runId).execute();

  it('triggers with a conf, marks one map index success so load runs, and records who did it', async () => {
    const runId = await failedRun('globex');
    expect((await rt.db.selectFrom('dag_runs').select('conf').where('id', '=', runId).executeTakeFirstOrThrow()).conf).toEqual({ fail: 'globex' });
    expect((await post(`/api/runs/${runId}/tasks/extract/mark`, { state: 'done' })).status).toBe(400);
    expect((await post(`/api/runs/${runId}/tasks/load/mark`, { state: 'success', map: 0 })).status).toBe(400);
    expect((await post(`/api/runs/${runId}/tasks/nope/mark`, { state: 'success' })).status).toBe(404);
    expect((await post(`/api/runs/${runId}/tasks/extract/mark`, { state: 'success', map: 7 })).status).toBe(404);

    const marked = await post(`/api/runs/${runId}/tasks/extract/mark`, { state: 'success', map: 1, reason: 'globex sent the file by mail' });
    expect(marked.status).toBe(200);
    expect(marked.body).toMatchObject({ marked: [1], reset: ['load'] });
    expect((await waitForRun(rt, runId)).state).toBe('success');
    expect(await letters(runId)).toEqual([{ map_index: 1, resolution: 'marked_success', resolved_by: 'http (loopback, no token) from 127.0.0.1' }]);
  });

  it('marks a run failed and success, and refuses the state it does not know', async () => {
    const runId = await failedRun('acme');
    expect((await post(`/api/runs/${runId}/mark`, { state: 'skipped' })).status).toBe(400);
    expect((await post(`/api/runs/${runId}/mark`, { state: 'success' })).body).toEqual({ run: runId, dag: 'http-acts', state: 'success', instances: 2 });
    expect(await taskStates(rt, runId)).toEqual({ tenants: 'success', 'extract[0]': 'success', 'extract[1]': 'success', load: 'success' });
    expect((await post(`/api/runs/${runId}/mark`, { state: 'failed' })).status).toBe(200);
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', runId).executeTakeFirstOrThrow()).state).toBe('failed');
    expect((await post('/api/runs/99999999/mark', { state: 'failed' })).status).toBe(404);
  });

  it('clears without downstream and failed only', async () => {
    const runId = await failedRun('acme');
    const res = await post(`/api/runs/${runId}/clear`, { tasks: ['tenants'], failedOnly: true });
    expect(res.body).toEqual({ cleared: ['extract', 'load'] });
    expect((await waitForRun(rt, runId)).state).toBe('failed');
    const only = await post(`/api/runs/${runId}/clear`, { tasks: ['tenants'], downstream: false });
    expect(only.body).toEqual({ cleared: ['tenants'] });
    expect((await waitForRun(rt, runId)).state).toBe('failed');
    expect((await post(`/api/runs/${runId}/clear`, { downstream: 'no' })).status).toBe(400);
  });

  it('lists open dead letters and replays them by id or by DAG', async () => {
    failing.add('acme');
    const first = await failedRun('none');
    const second = await failedRun('none');
    failing.delete('acme');
    const listed = await send(server.url, '/api/dead-letters?dag=http-acts');
    const open = (JSON.parse(listed.body) as { deadLetters: { id: number; run_id: number; map_item: unknown }[] }).deadLetters;
    const firstLetter = open.find((l) => l.run_id === first)!;
    expect(firstLetter.map_item).toBe('acme');
    expect((await post('/api/dead-letters/replay', { ids: [firstLetter.id], dag: 'http-acts' })).status).toBe(400);
    expect((await post('/api/dead-letters/replay', { task: 'extract' })).status).toBe(400);
    expect((await post('/api/dead-letters/replay', { ids: [99_999_999] })).status).toBe(404);

    const one = await post('/api/dead-letters/replay', { ids: [firstLetter.id] });
    expect(one.body).toEqual({ replayed: [firstLetter.id], runs: [{ run: first, cleared: ['extract', 'load'] }], refused: [] });
    expect((await waitForRun(rt, first)).state).toBe('success');
    expect((await post('/api/dead-letters/replay', { ids: [firstLetter.id] })).status).toBe(409);

    const bulk = await post('/api/dead-letters/replay', { dag: 'http-acts', task: 'extract' });
    expect(bulk.status).toBe(200);
    expect((bulk.body.runs as { run: number }[]).map((r) => r.run)).toContain(second);
    expect((await waitForRun(rt, second)).state).toBe('success');
    // Only the letters of runs whose conf still fails a tenant are open again.
    const still = (JSON.parse((await send(server.url, '/api/dead-letters?dag=http-acts')).body) as { deadLetters: { run_id: number }[] }).deadLetters;
    expect(still.filter((l) => l.run_id === first || l.run_id === second)).toEqual([]);
    expect((await send(server.url, '/api/dead-letters?status=maybe')).status).toBe(400);
  });

  it('pages the dead-letters page 500 at a time, newest first, keeping the DAG filter', async () => {
    const runId = await failedRun('globex');
    const [letter] = await rt.db.selectFrom('dead_letters').selectAll().where('run_id', '=', runId).where('resolved_at', 'is', null).execute();
    // 600 more open letters of the run, as a long outage would leave them.
    await rt.db
      .insertInto('dead_letters')
      .values(
        Array.from({ length: 600 }, () => ({
          ti_id: letter!.ti_id,
          run_id: runId,
          dag_id: 'http-acts',
          task_id: 'extract',
          map_index: 1,
          tries: 1,
          error: JSON.stringify(letter!.error),
        })),
      )
      .execute();
    const ids = async (path: string) => {
      const res = await send(server.url, path);
      expect(res.status).toBe(200);
      return {
        ids: [...res.body.matchAll(/<tr data-letter="(\d+)">/g)].map((m) => Number(m[1])),
        older: /href="([^"]+)" rel="next"/.exec(res.body)?.[1]?.replaceAll('&amp;', '&'),
      };
    };
    const first = await ids('/dead-letters?dag=http-acts');
    expect(first.ids).toHaveLength(500);
    expect(first.ids).toEqual([...first.ids].sort((a, b) => b - a));
    expect(first.older).toBe(`/dead-letters?dag=http-acts&before=${first.ids.at(-1)}`);
    const second = await ids(first.older!);
    expect(second.ids.length).toBeGreaterThanOrEqual(101);
    expect(Math.max(...second.ids)).toBeLessThan(Math.min(...first.ids));
    expect(second.older).toBeUndefined();
    expect((await send(server.url, '/dead-letters?before=x')).status).toBe(400);
    await rt.db.deleteFrom('dead_letters').where('run_id', '=', runId).execute();
  });

  it('pauses and unpauses, the flag the scheduler reads', async () => {
    const paused = await post('/api/dags/http-acts/pause');
    expect(paused.body).toEqual({ dag: 'http-acts', paused: true, changed: true });
    expect((await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'http-acts').executeTakeFirstOrThrow()).is_paused).toBe(true);
    expect((await post('/api/dags/http-acts/unpause')).body).toEqual({ dag: 'http-acts', paused: false, changed: true });
    expect((await post('/api/dags/nope/pause')).status).toBe(404);
  });

  it('refuses each new action sent as a form or from another site, changing nothing', async () => {
    const runId = await failedRun('acme');
    const before = await taskStates(rt, runId);
    const routes = [
      `/api/runs/${runId}/tasks/extract/mark`,
      `/api/runs/${runId}/mark`,
      '/api/dags/http-acts/pause',
      '/api/dags/http-acts/unpause',
      '/api/dead-letters/replay',
      `/api/runs/${runId}/clear`,
    ];
    for (const path of routes) {
      const form = await send(server.url, path, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'state=success' });
      expect(form.status, path).toBe(415);
      const foreign = await send(server.url, path, json({ state: 'success', dag: 'http-acts' }, { origin: 'http://evil.example' }));
      expect(foreign.status, path).toBe(403);
      const sameSite = await send(server.url, path, json({ state: 'success', dag: 'http-acts' }, { 'sec-fetch-site': 'cross-site' }));
      expect(sameSite.status, path).toBe(403);
    }
    expect(await taskStates(rt, runId)).toEqual(before);
    expect((await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'http-acts').executeTakeFirstOrThrow()).is_paused).toBe(false);
  });
});
