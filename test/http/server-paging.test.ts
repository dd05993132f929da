import type { FastifyInstance } from 'fastify';
import { defineDag, task } from 'hubflow';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

const WIDE = 70_000; // past PostgreSQL's 65,535 bind parameters, were one bound per instance

const wide = defineDag({
  id: 'http-wide',
  tasks: {
    list: task({ run: () => [] as number[] }),
    each: task<number>({ map: 'list', run: (ctx) => ctx.item }),
    sum: task({ after: ['each'], run: () => 0 }),
  },
});

interface Page {
  task_instances_total: number;
  offset: number;
  next_offset: number | null;
  task_summary: { task_id: string; state: string; instances: number }[];
  task_instances: { task_id: string; map_index: number; attempts: { outcome: string }[] }[];
}

describe('a run with more task instances than PostgreSQL has bind parameters', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  let runId: number;
  beforeAll(async () => {
    rt = await testRuntime([wide]);
    app = await createServer(rt);
    runId = (await rt.engine.triggerRun('http-wide')).id;
    // The expansion a mapped task over 70,000 items leaves, each instance tried once.
    await rt.db.deleteFrom('task_instances').where('run_id', '=', runId).where('task_id', '=', 'each').execute();
    await sql`insert into task_instances (run_id, dag_id, task_id, map_index, state, try_number, max_tries)
      select ${runId}, 'http-wide', 'each', i, 'success', 1, 1 from generate_series(0, ${WIDE - 1}) i`.execute(rt.db);
    await sql`insert into attempts (ti_id, try_number, worker, started_at, ended_at, outcome)
      select id, 1, 'w', now(), now(), 'success' from task_instances where run_id = ${runId} and task_id = 'each'`.execute(rt.db);
  }, 60_000);
  afterAll(async () => {
    await app?.close();
    await rt?.close();
  });

  it('pages its task instances in the API, in DAG order, with a summary of the whole run', async () => {
    const first = await app.inject({ method: 'GET', url: `/api/runs/${runId}` });
    expect(first.statusCode).toBe(200);
    const page = first.json<Page>();
    expect(page.task_instances_total).toBe(WIDE + 2);
    expect(page.task_instances).toHaveLength(1000);
    expect(page.task_instances.slice(0, 3).map((t) => `${t.task_id}${t.map_index}`)).toEqual(['list-1', 'each0', 'each1']);
    expect(page.task_instances[1]!.attempts).toEqual([expect.objectContaining({ outcome: 'success' })]);
    expect(page.next_offset).toBe(1000);
    expect(page.task_summary).toEqual(expect.arrayContaining([{ task_id: 'each', state: 'success', instances: WIDE }]));

    const last = (await app.inject({ method: 'GET', url: `/api/runs/${runId}?offset=${WIDE - 500}&limit=100000` })).json<Page>();
    expect(last.task_instances).toHaveLength(502);
    expect(last.task_instances.at(-2)).toMatchObject({ task_id: 'each', map_index: WIDE - 1 });
    expect(last.task_instances.at(-1)).toMatchObject({ task_id: 'sum' });
    expect(last.next_offset).toBeNull();
    for (const query of ['limit=0', 'offset=-1', 'offset=x'])
      expect((await app.inject({ method: 'GET', url: `/api/runs/${runId}?${query}` })).statusCode, query).toBe(400);
  });

  it('pages its run page', async () => {
    const first = await app.inject({ method: 'GET', url: `/runs/${runId}` });
    expect(first.statusCode).toBe(200);
    expect(first.body).toContain(`Instances 1–500 of ${WIDE + 2}`);
    expect(first.body).toContain(`href="/runs/${runId}?offset=500">next`);
    expect(first.body).toMatch(/<code>each<\/code><\/td><td>.*success.*<\/td><td class="num">70000<\/td>/);
    const end = await app.inject({ method: 'GET', url: `/runs/${runId}?offset=${WIDE}` });
    expect(end.body).toContain('<code>sum</code>');
    expect(end.body).toContain('>previous</a>');
    expect(end.body).not.toContain('>next</a>');
    expect((await app.inject({ method: 'GET', url: `/runs/${runId}?offset=-5` })).statusCode).toBe(400);
  });

  it('pages the run list past its newest runs', async () => {
    const older = (await rt.engine.triggerRun('http-wide', { logicalDate: new Date('2024-01-01') })).id;
    const newest = (await rt.engine.triggerRun('http-wide', { logicalDate: new Date('2024-01-02') })).id;
    const ids = async (query: string) =>
      (await app.inject({ method: 'GET', url: `/api/runs?${query}` })).json<{ runs: { id: number }[] }>().runs.map((r) => r.id);
    expect(await ids('limit=1')).toEqual([newest]);
    expect(await ids(`limit=1&before=${newest}`)).toEqual([older]);
    expect(await ids(`before=${older}`)).toEqual([runId]);
  });
});
