import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { loadConfig } from '../core/config.ts';
import { createLogger } from '../core/log.ts';
import { defineDag, task } from '../server/engine/dag.ts';
import { registryOf } from '../server/engine/loader.ts';
import { taskOrder } from '../server/http/api.ts';
import { getGanttData } from '../server/http/gantt-queries.ts';
import { createServer } from '../server/http/server.ts';
import { closeBenchRuntime } from './cleanup.ts';
import { openRuntime } from '../server/runtime.ts';

const TASKS = 20;
const ROUNDS = 9;
const TARGET_MS = 300;
/** Items of the run's one mapped task: 2,000 instances (all drawn), then 20,000 (the first 2,000 drawn). */
const CASES = [1_981, 19_981];

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const round = (x: number) => Math.round(x * 10) / 10;

/** Nineteen tasks in a chain, the tenth mapped over the first's items. */
function chainDag() {
  const ids = Array.from({ length: TASKS - 1 }, (_, i) => `task_${String(i).padStart(2, '0')}`);
  const tasks: Record<string, ReturnType<typeof task>> = Object.fromEntries(ids.map((id, i) => [id, task({ after: i ? [ids[i - 1]!] : [], run: () => null })]));
  tasks.each = task({ map: ids[0]!, run: () => null });
  return defineDag({ id: 'bench-gantt', tasks });
}

/**
 * The gantt page of one large run: every instance queued, tried (a quarter of them twice, the
 * first try a retry) and finished, through Fastify, store reads and rendering together.
 */
export async function runGanttBench() {
  const id = `bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const config = loadConfig({ ...process.env, HUBFLOW_DB_SCHEMA: id, HUBFLOW_QUEUE_PREFIX: `hf-${id}`, HUBFLOW_LOG_LEVEL: 'warn' });
  const dag = chainDag();
  const rt = await openRuntime({ config, log: createLogger('warn'), dags: registryOf([dag]) });
  const app = await createServer(rt);
  const results = [];
  try {
    for (const [n, items] of CASES.entries()) {
      const at = new Date(Date.UTC(2020, 0, 1 + n));
      const run = await rt.db
        .insertInto('dag_runs')
        .values({ dag_id: dag.id, logical_date: at, interval_start: at, interval_end: at, run_type: 'manual', state: 'success', conf: '{}', due_at: at })
        .returning('id')
        .executeTakeFirstOrThrow();
      await sql`insert into task_instances (run_id, dag_id, task_id, map_index, map_item, state, try_number, max_tries, ready_at, started_at, ended_at)
        select ${run.id}, ${dag.id}, t.task_id, t.map_index, t.item, 'success', case when t.map_index % 4 = 1 then 2 else 1 end, 3,
               ${at}::timestamptz + t.k * interval '1 second', ${at}::timestamptz + t.k * interval '1 second' + interval '200 ms', ${at}::timestamptz + t.k * interval '1 second' + interval '900 ms'
          from (select id as task_id, -1 as map_index, null::jsonb as item, i as k from unnest(${[...dag.tasks.keys()].filter((t) => t !== 'each')}::text[]) with ordinality as u(id, i)
                union all
                select 'each', m, jsonb_build_object('tenant', 'tenant-' || m), 20 + m / 50 from generate_series(0, ${items - 1}) m) t`.execute(rt.db);
      // Each try: a retried first try where the instance took two, then the one that succeeded.
      await sql`insert into attempts (ti_id, try_number, worker, started_at, ended_at, outcome)
        select id, 1, 'bench', started_at, started_at + interval '300 ms', case when try_number = 2 then 'retry' else 'success' end from task_instances where run_id = ${run.id}
        union all
        select id, 2, 'bench', started_at + interval '500 ms', ended_at, 'success' from task_instances where run_id = ${run.id} and try_number = 2`.execute(
        rt.db,
      );
      const url = `/runs/${run.id}/gantt`;
      const requests: number[] = [];
      const reads: number[] = [];
      let bytes = 0;
      for (let i = 0; i < ROUNDS; i++) {
        const t0 = performance.now();
        const res = await app.inject({ method: 'GET', url });
        requests.push(performance.now() - t0);
        if (res.statusCode !== 200) throw new Error(`${url} answered ${res.statusCode}`);
        bytes = res.body.length;
        // The store's part alone: the rest of the request is rendering.
        const t1 = performance.now();
        await getGanttData(rt.db, run.id, taskOrder(rt));
        reads.push(performance.now() - t1);
      }
      const requestMs = median(requests);
      results.push({
        instances: TASKS - 1 + items,
        rows: (await sql<{ n: string }>`select count(*) as n from attempts a join task_instances t on t.id = a.ti_id where t.run_id = ${run.id}`.execute(rt.db))
          .rows[0]!.n,
        pageKb: Math.round(bytes / 1024),
        requestMs: { median: round(requestMs), all: requests.map(round) },
        storeReadsMs: { median: round(median(reads)) },
        withinTarget: requestMs <= TARGET_MS,
      });
    }
    return { benchmark: 'gantt', tasks: TASKS, targetMs: TARGET_MS, runs: results };
  } finally {
    await app.close();
    await closeBenchRuntime(rt, id);
  }
}
