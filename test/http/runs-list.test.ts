import type { FastifyInstance } from 'fastify';
import { defineDag, task } from 'hubflow';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

const nothing = () => null;
const alpha = defineDag({ id: 'list-alpha', tasks: { only: task({ run: nothing }) } });
const beta = defineDag({
  id: 'list-beta',
  tasks: {
    items: task({ run: () => [] }),
    each: task({ map: 'items', run: nothing }),
    last: task({ after: ['each'], run: nothing }),
  },
});

/** Runs as the store holds them, without a worker: [dag, logical date, type, state]. */
const RUNS: [string, string, string, string][] = [
  ['list-alpha', '2026-01-01T06:00:00Z', 'scheduled', 'success'],
  ['list-alpha', '2026-01-02T06:00:00Z', 'scheduled', 'failed'],
  ['list-alpha', '2026-01-02T23:00:00Z', 'manual', 'success'],
  ['list-alpha', '2026-01-03T06:00:00Z', 'backfill', 'success'],
  ['list-beta', '2026-01-02T06:00:00Z', 'scheduled', 'running'],
  ['list-beta', '2026-01-04T06:00:00Z', 'scheduled', 'failed'],
];

const runIds = (body: string) => [...body.matchAll(/<tr data-run="(\d+)">/g)].map((m) => Number(m[1]));
const liveToken = (body: string) => /data-live-token="([^"]+)"/.exec(body)?.[1];

describe('the runs list', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  const ids: number[] = [];
  const get = (url: string) => app.inject({ method: 'GET', url });

  beforeAll(async () => {
    rt = await testRuntime([alpha, beta]);
    app = await createServer(rt);
    for (const [dag, at, type, state] of RUNS) {
      const row = await rt.db
        .insertInto('dag_runs')
        .values({
          dag_id: dag,
          logical_date: at,
          interval_start: at,
          interval_end: at,
          run_type: type as 'manual',
          state: state as 'success',
          conf: '{}',
          due_at: at,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      ids.push(row.id);
    }
  });
  afterAll(async () => {
    await app?.close();
    await rt?.close();
  });

  it('filters by DAG, state, run type and logical date, as a form of GET parameters', async () => {
    expect(runIds((await get('/')).body)).toEqual([...ids].reverse());
    expect(runIds((await get('/?dag=list-beta')).body)).toEqual([ids[5], ids[4]]);
    expect(runIds((await get('/?state=failed')).body)).toEqual([ids[5], ids[1]]);
    expect(runIds((await get('/?dag=list-alpha&type=backfill')).body)).toEqual([ids[3]]);
    // A bare `to` date takes its whole (UTC) day: 2 January 23:00 is in.
    expect(runIds((await get('/?from=2026-01-02&to=2026-01-02')).body)).toEqual([ids[4], ids[2], ids[1]]);
    expect(runIds((await get('/?from=2026-01-02T12:00:00Z&dag=list-alpha')).body)).toEqual([ids[3], ids[2]]);
    // Empty fields, as a form sends them, filter nothing.
    expect(runIds((await get('/?dag=&state=&type=&from=&to=')).body)).toHaveLength(RUNS.length);

    const page = (await get('/?dag=list-beta&state=failed')).body;
    expect(page).toContain('<form class="filters" method="get"');
    expect(page).toContain('<option value="list-beta" selected>list-beta</option>');
    expect(page).toContain('<option value="failed" selected>failed</option>');
  });

  it('says which parameter is wrong', async () => {
    for (const [query, problem] of [
      ['state=exploded', "state: 'exploded' is not one of queued, running, success, failed, cancelled"],
      ['type=cron', "type: 'cron' is not one of scheduled, manual, backfill, test"],
      ['from=yesterday', "from: 'yesterday' is not a date (YYYY-MM-DD) or a date-time with its offset"],
      ['from=2026-01-02T10:00:00', 'from: &#39;2026-01-02T10:00:00&#39; is not a date'],
      ['from=2026-01-03&to=2026-01-01', "to: '2026-01-01' is not after from '2026-01-03'"],
      ['before=-4', "before: '-4' is not a positive whole number"],
    ]) {
      const res = await get(`/?${query}`);
      expect(res.statusCode, query).toBe(400);
      expect(res.body.replaceAll('&#39;', "'"), query).toContain(problem!.replaceAll('&#39;', "'"));
    }
    expect((await get('/?dag=list-gamma')).body).toContain('No run matches these filters.');
  });

  it('pages on by the last id shown, keeping the filters', async () => {
    const first = (await get('/?dag=list-alpha&limit=2')).body;
    expect(runIds(first)).toEqual([ids[3], ids[2]]);
    const older = /<a href="(\/\?[^"]+)#runs">older runs<\/a>/.exec(first)?.[1]?.replaceAll('&amp;', '&');
    expect(older).toBe(`/?dag=list-alpha&limit=2&before=${ids[2]}`);
    const second = (await get(older!)).body;
    expect(runIds(second)).toEqual([ids[1], ids[0]]);
    expect(second).toContain('>newest</a>');
    // The last page has nothing older.
    expect(second).not.toContain('older runs');
    expect(runIds((await get(`/?dag=list-alpha&limit=2&before=${ids[0]}`)).body)).toEqual([]);
  });

  it('hands the page a live token that changes when a run it shows does, and only then', async () => {
    const page = (await get('/?dag=list-alpha')).body;
    const token = liveToken(page);
    expect(page).toContain('data-live-url="/api/live/runs?dag=list-alpha"');
    const live = async () => (await get('/api/live/runs?dag=list-alpha')).json<{ token: string }>().token;
    expect(await live()).toBe(token);
    await rt.db.updateTable('dag_runs').set({ state: 'running' }).where('id', '=', ids[4]!).execute();
    expect(await live()).toBe(token);
    await rt.db.updateTable('dag_runs').set({ state: 'queued' }).where('id', '=', ids[0]!).execute();
    expect(await live()).not.toBe(token);
    expect((await get('/api/live/runs?state=nope')).statusCode).toBe(400);
  });
});

describe('a run page reached from the grid', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  let runId: number;
  const get = (url: string) => app.inject({ method: 'GET', url });

  beforeAll(async () => {
    rt = await testRuntime([beta]);
    app = await createServer(rt);
    runId = (await rt.engine.triggerRun('list-beta')).id;
    // A mapped task of 1,200 items over tenants: the run page shows 500 instances a page.
    await sql`insert into task_instances (run_id, dag_id, task_id, map_index, state, max_tries, map_item)
      select ${runId}, 'list-beta', 'each', i, 'success', 1, jsonb_build_object('tenant', 'tenant-' || i) from generate_series(0, 1199) i`.execute(rt.db);
  });
  afterAll(async () => {
    await app?.close();
    await rt?.close();
  });

  it('links each grid cell to its run page, at the page and row of the instance', async () => {
    const grid = (await get(`/dags/list-beta?expand=each`)).body;
    expect(grid).toContain(`href="/runs/${runId}/t/items"`);
    expect(grid).toContain(`href="/runs/${runId}/t/each/0"`);
    expect(grid).toContain(`href="/runs/${runId}/t/each/700"`);
    const to = async (url: string) => (await get(url)).headers.location;
    expect(await to(`/runs/${runId}/t/items`)).toBe(`/runs/${runId}?task=items#ti-items`);
    expect(await to(`/runs/${runId}/t/each/700`)).toBe(`/runs/${runId}?task=each&index=700#ti-each-700`);

    const page = (await get(`/runs/${runId}?task=each&index=700`)).body;
    expect(page).toContain('Instances 501–1000 of');
    expect(page).toMatch(
      /<tr id="ti-each-700" data-task="each" data-item="tenant-700" data-state="success">\n<td><code>each<\/code> tenant-700 <span class="muted">\[700\]<\/span>/,
    );
    expect((await get(`/runs/${runId}?task=last`)).body).toContain('id="ti-last"');
  });

  it('gives its live token, which moves with any instance', async () => {
    const page = (await get(`/runs/${runId}`)).body;
    const live = async () => (await get(`/api/live/runs/${runId}`)).json<{ token: string }>().token;
    expect(await live()).toBe(liveToken(page));
    await rt.db.updateTable('task_instances').set({ state: 'failed' }).where('run_id', '=', runId).where('map_index', '=', 1111).execute();
    expect(await live()).not.toBe(liveToken(page));
    expect((await get('/api/live/runs/99999999')).statusCode).toBe(404);

    const dag = (await get('/dags/list-beta')).body;
    const dagLive = async () => (await get('/api/live/dags/list-beta?runs=25')).json<{ token: string }>().token;
    expect(await dagLive()).toBe(liveToken(dag));
    await rt.db.updateTable('task_instances').set({ state: 'success' }).where('run_id', '=', runId).where('map_index', '=', 1111).execute();
    expect(await dagLive()).not.toBe(liveToken(dag));
    expect((await get('/api/live/dags/list-beta?runs=0')).statusCode).toBe(400);
    expect((await get('/api/live/dags/nope?runs=5')).statusCode).toBe(404);
  });
});
