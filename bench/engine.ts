import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { Queue, Worker } from 'bullmq';
import { loadConfig } from '../core/config.ts';
import { defineDag, task, type Dag } from '../server/engine/dag.ts';
import { defineResource } from '../server/engine/resources.ts';
import { createLogger } from '../core/log.ts';
import { startWorker } from '../server/processes.ts';
import { closeBenchRuntime } from './cleanup.ts';
import { openRuntime, type Runtime } from '../server/runtime.ts';
import { registryOf } from '../server/engine/loader.ts';
import { poolOf } from '../core/pg.ts';

const CHAIN = 200;
const FAN_OUT = 1_000;
const CONCURRENCY = 50;
/** Rounds of each measurement, alternating hubflow and raw BullMQ so both see the same machine. */
const ROUNDS = 5;

const quantile = (xs: number[], q: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
};
const round = (x: number, digits = 2) => Number(x.toFixed(digits));
const ms = () => performance.now();

/** A 200-task chain through hubflow: handoff = next task's start minus the previous task's end. */
async function hubflowChain(rt: Runtime, dag: Dag, marks: { start: number[]; end: number[] }): Promise<number[]> {
  marks.start.length = marks.end.length = 0;
  const run = await rt.engine.triggerRun(dag.id);
  await waitRun(rt, run.id);
  return marks.start.slice(1).map((s, i) => s - marks.end[i]!);
}

/** Waits for a run and returns its duration by the store's own clock (polling slowly, so the wait does not load the engine it measures). */
async function waitRun(rt: Runtime, runId: number): Promise<number> {
  for (;;) {
    const run = await rt.db.selectFrom('dag_runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
    if (run.state === 'success') return new Date(run.ended_at!).getTime() - new Date(run.created_at).getTime();
    if (run.state === 'failed') throw new Error(`bench run ${runId} failed`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** The same chain in raw BullMQ: each job adds the next when it is done. */
async function rawChain(connection: { url: string }, prefix: string): Promise<number[]> {
  const queue = new Queue('raw-chain', { connection, prefix });
  const start: number[] = [];
  const end: number[] = [];
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const worker = new Worker(
    'raw-chain',
    async (job) => {
      const i = job.data.i as number;
      start[i] = ms();
      end[i] = ms();
      if (i + 1 < CHAIN) await queue.add('hop', { i: i + 1 }, { removeOnComplete: true });
      else finished();
    },
    { connection, prefix, concurrency: 1 },
  );
  await worker.waitUntilReady();
  await queue.add('hop', { i: 0 }, { removeOnComplete: true });
  await done;
  await worker.close();
  await queue.close();
  return start.slice(1).map((s, i) => s - end[i]!);
}

/**
 * The least a hop costs when PostgreSQL, not Redis, holds the truth, measured like the raw
 * chain: each job records its success and its successor's readiness in one durable commit,
 * of one row each, and nothing else (no trigger rules, attempts, results or batching).
 * - `claimed`: the successor's job is added while the commit travels (as hubflow does), and
 *   the successor claims its row before it runs; the claim waits for that commit, not for
 *   the disk. This is what keeps a stale or premature job from running.
 * - `commitOnly`: the commit first, then the successor's job, and no claim: the cheapest hop
 *   that still records each step before the next one can start.
 * A store-backed engine cannot hop faster than the variant whose guarantees it keeps.
 */
async function storeFloorChain(connection: { url: string }, prefix: string, rt: Runtime, variant: 'claimed' | 'commitOnly'): Promise<number[]> {
  const pool = poolOf(rt.db);
  const [done, claim] = [await pool.connect(), await pool.connect()];
  const table = `bench_floor_${variant.toLowerCase()}`;
  const queue = new Queue(`floor-${variant}`, { connection, prefix });
  const start: number[] = [];
  const end: number[] = [];
  let finished!: () => void;
  const over = new Promise<void>((r) => (finished = r));
  try {
    await done.query(`create table if not exists ${table} (i int primary key, state text not null)`);
    await done.query(`truncate ${table}; insert into ${table} select g, 'scheduled' from generate_series(0, ${CHAIN - 1}) g`);
    await claim.query(`set synchronous_commit = off`);
    const record = (i: number) =>
      done.query(`with d as (update ${table} set state = 'success' where i = $1) update ${table} set state = 'queued' where i = $1 + 1`, [i]);
    const next = (i: number) => queue.add('hop', { i: i + 1 }, { removeOnComplete: true });
    const worker = new Worker(
      `floor-${variant}`,
      async (job) => {
        const i = job.data.i as number;
        // Waits for the row lock of the commit that queued it, when that is still on its way.
        if (variant === 'claimed') await claim.query(`update ${table} set state = 'running' where i = $1`, [i]);
        start[i] = ms();
        end[i] = ms();
        if (i + 1 >= CHAIN) return finished();
        if (variant === 'claimed') await Promise.all([record(i), next(i)]);
        else await record(i).then(() => next(i));
      },
      { connection, prefix, concurrency: 1 },
    );
    await worker.waitUntilReady();
    await done.query(`update ${table} set state = 'queued' where i = 0`);
    await queue.add('hop', { i: 0 }, { removeOnComplete: true });
    await over;
    await worker.close();
  } finally {
    await queue.close();
    done.release();
    claim.release();
  }
  return start.slice(1).map((s, i) => s - end[i]!);
}

/** N no-op jobs added in bulk, processed at the same concurrency as hubflow's worker. */
async function rawThroughput(connection: { url: string }, prefix: string, n: number): Promise<number> {
  const queue = new Queue('raw-bulk', { connection, prefix });
  let left = n;
  let finished!: () => void;
  const done = new Promise<void>((r) => (finished = r));
  const worker = new Worker(
    'raw-bulk',
    async () => {
      if (--left === 0) finished();
    },
    { connection, prefix, concurrency: CONCURRENCY },
  );
  await worker.waitUntilReady();
  const t0 = ms();
  await queue.addBulk(Array.from({ length: n }, (_, i) => ({ name: 'noop', data: { i }, opts: { removeOnComplete: true } })));
  await done;
  const seconds = (ms() - t0) / 1000;
  await worker.close();
  await queue.close();
  return n / seconds;
}

/** The chain and fan DAGs, with every task using `uses` (resources) or none. */
function benchDags(suffix: string, uses: string[], marks: { start: number[]; end: number[] }) {
  const chainTasks: Record<string, ReturnType<typeof task>> = {};
  for (let i = 0; i < CHAIN; i++) {
    chainTasks[`t${i}`] = task({
      after: i ? [`t${i - 1}`] : [],
      uses,
      run: () => {
        marks.start[i] = ms();
        marks.end[i] = ms();
      },
    });
  }
  const chain = defineDag({ id: `bench-chain${suffix}`, maxActiveRuns: 100, tasks: chainTasks });
  const fan = defineDag({
    id: `bench-fan${suffix}`,
    maxActiveRuns: 100,
    tasks: {
      list: task({ uses, run: () => Array.from({ length: FAN_OUT }, (_, i) => i) }),
      noop: task({ map: 'list', uses, run: () => null }),
      join: task({ after: ['noop'], uses, run: () => null }),
    },
  });
  return { chain, fan };
}

/**
 * A resource with blackouts that are never open during the benchmark: a nightly window twelve
 * hours away and a past maintenance. Every dispatch and start of a task that uses it checks
 * both, which is the cost measured.
 */
function quietResource() {
  const later = new Date(Date.now() + 12 * 3_600_000);
  return defineResource({
    id: 'bench-db',
    blackouts: [
      { reason: 'nightly batch', cron: `${later.getUTCMinutes()} ${later.getUTCHours()} * * *`, timezone: 'UTC', duration: '1h' },
      { reason: 'maintenance', from: '2020-01-01T00:00:00Z', to: '2020-01-02T00:00:00Z' },
    ],
  });
}

/**
 * Alternates the plain DAGs, the windowed DAGs and raw BullMQ round by round, so the store's
 * growth over the benchmark (and the machine's moods) weigh on all three alike.
 */
async function measure(
  rt: Runtime,
  plain: { chain: Dag; fan: Dag },
  windowed: { chain: Dag; fan: Dag },
  marks: { start: number[]; end: number[] },
  connection: { url: string },
  prefix: string,
) {
  // Warm every path (JIT, connection pools, prepared Lua scripts) before measuring.
  await hubflowChain(rt, plain.chain, marks);
  await hubflowChain(rt, windowed.chain, marks);
  await rawChain(connection, prefix);
  await storeFloorChain(connection, prefix, rt, 'claimed');
  await storeFloorChain(connection, prefix, rt, 'commitOnly');
  const out = {
    hub: [] as number[],
    win: [] as number[],
    raw: [] as number[],
    floor: [] as number[],
    commitFloor: [] as number[],
    hubRates: [] as number[],
    winRates: [] as number[],
    rawRates: [] as number[],
  };
  for (let round = 0; round < ROUNDS; round++) {
    out.hub.push(...(await hubflowChain(rt, plain.chain, marks)));
    out.win.push(...(await hubflowChain(rt, windowed.chain, marks)));
    out.raw.push(...(await rawChain(connection, prefix)));
    out.floor.push(...(await storeFloorChain(connection, prefix, rt, 'claimed')));
    out.commitFloor.push(...(await storeFloorChain(connection, prefix, rt, 'commitOnly')));
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [dag, rates] of [
      [plain.fan, out.hubRates],
      [windowed.fan, out.winRates],
    ] as const) {
      const run = await rt.engine.triggerRun(dag.id);
      rates.push((FAN_OUT + 2) / ((await waitRun(rt, run.id)) / 1000));
    }
    out.rawRates.push(await rawThroughput(connection, prefix, FAN_OUT + 2));
  }
  return out;
}

/** Widths of the wide-fan runs, each measured in a process of its own (see wide-fan.ts). */
const WIDE_FANS = [10_000, 100_000];

/**
 * A `dags test`-style run mapping a no-op over each width, alone in a child process so its
 * peak RSS is that run's and no other measurement's. Targets: 100,000 instances under 400 MB
 * and at least 5,000 instances/s.
 */
async function wideFans() {
  const script = fileURLToPath(new URL('./wide-fan.ts', import.meta.url));
  const runs = [];
  for (const items of WIDE_FANS) {
    const { stdout } = await promisify(execFile)(process.execPath, ['--import', 'tsx', script, String(items)], { maxBuffer: 1 << 20 });
    runs.push(JSON.parse(stdout.trim().split('\n').at(-1)!) as Record<string, number>);
  }
  return { runs, targets: { instances: 100_002, maxPeakRssMb: 400, minPerSecond: 5_000 } };
}

export async function runEngineBench() {
  const id = `bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const config = loadConfig({ ...process.env, HUBFLOW_DB_SCHEMA: id, HUBFLOW_QUEUE_PREFIX: `hf-${id}`, HUBFLOW_LOG_LEVEL: 'warn' });
  const marks = { start: [] as number[], end: [] as number[] };
  const plain = benchDags('', [], marks);
  const windowed = benchDags('-windowed', ['bench-db'], marks);
  const rt = await openRuntime({
    config,
    log: createLogger('warn'),
    dags: registryOf([plain.chain, plain.fan, windowed.chain, windowed.fan], [quietResource()]),
    poolSize: 20,
  });
  const worker = startWorker(rt, { concurrency: CONCURRENCY });
  const connection = { url: rt.redis.url };
  const prefix = `${config.HUBFLOW_QUEUE_PREFIX}-raw`;
  try {
    const base = await measure(rt, plain, windowed, marks, connection, prefix);
    const p50 = (xs: number[]) => quantile(xs, 0.5);
    const p99 = (xs: number[]) => quantile(xs, 0.99);
    const hubRate = p50(base.hubRates);
    const rawRate = p50(base.rawRates);
    const winRate = p50(base.winRates);
    return {
      benchmark: 'engine',
      machine: { cpus: (await import('node:os')).cpus().length, node: process.version },
      handoff: {
        chainLength: CHAIN,
        samples: base.hub.length,
        hubflowMs: { p50: round(p50(base.hub)), p99: round(p99(base.hub)) },
        rawBullmqMs: { p50: round(p50(base.raw)), p99: round(p99(base.raw)) },
        ratio: { p50: round(p50(base.hub) / p50(base.raw)), p99: round(p99(base.hub) / p99(base.raw)) },
        targets: { p50Ms: 5, p99Ms: 25, maxRatio: 3 },
        // Raw BullMQ plus one durable commit and one claim per hop (see storeFloorChain).
        storeFloorMs: { p50: round(p50(base.floor)), p99: round(p99(base.floor)) },
        storeFloorVsRaw: { p50: round(p50(base.floor) / p50(base.raw)), p99: round(p99(base.floor) / p99(base.raw)) },
        // Raw BullMQ plus one durable commit before each enqueue, and no claim.
        commitFloorMs: { p50: round(p50(base.commitFloor)), p99: round(p99(base.commitFloor)) },
        commitFloorVsRaw: { p50: round(p50(base.commitFloor) / p50(base.raw)), p99: round(p99(base.commitFloor) / p99(base.raw)) },
        hubflowVsStoreFloor: { p50: round(p50(base.hub) / p50(base.floor)), p99: round(p99(base.hub) / p99(base.floor)) },
      },
      throughput: {
        instancesPerRun: FAN_OUT + 2,
        workerConcurrency: CONCURRENCY,
        hubflowInstancesPerSecond: Math.round(hubRate),
        rawBullmqJobsPerSecond: Math.round(rawRate),
        ratio: round(rawRate / hubRate),
        allRounds: { hubflow: base.hubRates.map(Math.round), raw: base.rawRates.map(Math.round) },
        targets: { minPerSecond: 1000, maxRatio: 3 },
      },
      // The same DAGs with every task using a resource that has blackouts (none open): the cost
      // of the window checks at dispatch and at start.
      windowChecks: {
        handoffMs: { p50: round(p50(base.win)), p99: round(p99(base.win)) },
        handoffOverheadMs: { p50: round(p50(base.win) - p50(base.hub)), p99: round(p99(base.win) - p99(base.hub)) },
        instancesPerSecond: Math.round(winRate),
        throughputChangePercent: round(((winRate - hubRate) / hubRate) * 100, 1),
        allRounds: base.winRates.map(Math.round),
      },
      wideFan: await wideFans(),
    };
  } finally {
    await worker.close();
    await closeBenchRuntime(rt, id);
  }
}
