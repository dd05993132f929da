import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { defineDag, task } from '../server/engine/dag.ts';
import { registryOf } from '../server/engine/loader.ts';
import { dagPage } from '../server/http/dag-page.ts';
import { createServer } from '../server/http/server.ts';
import { closeBenchRuntime } from './cleanup.ts';
import { openRuntime } from '../server/runtime.ts';

const RUNS = 1_000;
const TASKS = 20;
const ROUNDS = 9;
const TARGET_MS = 300;

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

/** Twenty tasks in five layers of four, each depending on the whole layer before it. */
function wideDag() {
  const ids = Array.from({ length: TASKS }, (_, i) => `task_${String(i).padStart(2, '0')}`);
  const tasks = Object.fromEntries(
    ids.map((id, i) => [id, task({ after: i < 4 ? [] : ids.slice(Math.floor(i / 4) * 4 - 4, Math.floor(i / 4) * 4), run: () => null })]),
  );
  return defineDag({ id: 'bench-page', schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin' }, tasks });
}

/**
 * The DAG page of a DAG with 1,000 runs of 20 tasks (20,000 instances in mixed states), all on one
 * page: the whole request (store reads and rendering) through Fastify, and the page alone; then
 * the runs list over the same store (all 1,000 runs on one page, and filtered), a run page, and
 * the live endpoints an open page polls.
 */
export async function runDagPageBench() {
  const id = `bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const config = loadConfig({ ...process.env, HUBFLOW_DB_SCHEMA: id, HUBFLOW_QUEUE_PREFIX: `hf-${id}`, HUBFLOW_LOG_LEVEL: 'warn' });
  const dag = wideDag();
  const rt = await openRuntime({ config, log: createLogger('warn'), dags: registryOf([dag]) });
  const app = await createServer(rt);
  try {
    await sql`insert into dag_runs (dag_id, logical_date, interval_start, interval_end, run_type, state, conf, due_at)
      select ${dag.id}, d, d, d + interval '1 day', 'scheduled', case when n % 7 = 0 then 'failed' else 'success' end, '{}', d + interval '1 day'
      from generate_series(1, ${RUNS}) n, lateral (select timestamptz '2020-01-01' + n * interval '1 day' d) t`.execute(rt.db);
    await sql`insert into task_instances (run_id, dag_id, task_id, state, max_tries)
      select r.id, r.dag_id, t.id, case when r.state = 'failed' and t.i >= 12 then (case when t.i = 12 then 'failed' else 'upstream_failed' end) else 'success' end, 1
      from dag_runs r, unnest(${[...dag.tasks.keys()]}::text[]) with ordinality as t(id, i)`.execute(rt.db);
    const url = `/dags/${dag.id}?runs=${RUNS}`;
    const requests: number[] = [];
    const renders: number[] = [];
    let bytes = 0;
    for (let i = 0; i < ROUNDS; i++) {
      const t0 = performance.now();
      const res = await app.inject({ method: 'GET', url });
      requests.push(performance.now() - t0);
      if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
      bytes = res.body.length;
      const t1 = performance.now();
      await dagPage(rt, dag, { runs: RUNS, expand: undefined, now: new Date() });
      renders.push(performance.now() - t1);
    }
    const requestMs = median(requests);
    // The runs list over the same store: a page of all 1,000 runs, then filtered pages, then the
    // live endpoints an open page polls.
    const timed = async (url: string) => {
      const times: number[] = [];
      for (let i = 0; i < ROUNDS; i++) {
        const t0 = performance.now();
        const res = await app.inject({ method: 'GET', url });
        times.push(performance.now() - t0);
        if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
      }
      return round(median(times));
    };
    const lastRun = (
      await rt.db
        .selectFrom('dag_runs')
        .select((eb) => eb.fn.max('id').as('id'))
        .executeTakeFirstOrThrow()
    ).id;
    const runsList = {
      [`/?limit=${RUNS}`]: await timed(`/?limit=${RUNS}`),
      [`/?dag=${dag.id}&state=failed&limit=${RUNS}`]: await timed(`/?dag=${dag.id}&state=failed&limit=${RUNS}`),
      [`/?dag=${dag.id}&type=scheduled&from=2021-01-01&to=2021-12-31`]: await timed(`/?dag=${dag.id}&type=scheduled&from=2021-01-01&to=2021-12-31`),
      '/?before=500': await timed('/?before=500'),
      [`/runs/${lastRun}`]: await timed(`/runs/${lastRun}`),
    };
    const live = {
      [`/api/live/dags/${dag.id}?runs=${RUNS}`]: await timed(`/api/live/dags/${dag.id}?runs=${RUNS}`),
      [`/api/live/runs?limit=${RUNS}`]: await timed(`/api/live/runs?limit=${RUNS}`),
      [`/api/live/runs/${lastRun}`]: await timed(`/api/live/runs/${lastRun}`),
    };
    return {
      benchmark: 'dag-page',
      runs: RUNS,
      tasks: TASKS,
      instances: RUNS * TASKS,
      pageKb: Math.round(bytes / 1024),
      requestMs: { median: round(requestMs), all: requests.map(round) },
      storeAndRenderMs: { median: round(median(renders)) },
      targetMs: TARGET_MS,
      withinTarget: requestMs <= TARGET_MS,
      runsListMs: runsList,
      runsListWithinTarget: Object.values(runsList).every((ms) => ms <= TARGET_MS),
      liveTokenMs: live,
    };
  } finally {
    await app.close();
    await closeBenchRuntime(rt, id);
  }
}
