import { randomUUID } from 'node:crypto';
import { Queue, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { loadConfig } from '../server/config.ts';
import { defineDag, task, type Dag } from '../server/engine/dag.ts';
import { defineResource } from '../server/engine/resources.ts';
import { createLogger } from '../server/log.ts';
import { startWorker } from '../server/processes.ts';
import { openRuntime, type Runtime } from '../server/runtime.ts';
import { registryOf } from '../server/engine/loader.ts';

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
async function measure(rt: Runtime, plain: { chain: Dag; fan: Dag }, windowed: { chain: Dag; fan: Dag }, marks: { start: number[]; end: number[] }, connection: { url: string }, prefix: string) {
  // Warm every path (JIT, connection pools, prepared Lua scripts) before measuring.
  await hubflowChain(rt, plain.chain, marks);
  await hubflowChain(rt, windowed.chain, marks);
  await rawChain(connection, prefix);
  const out = { hub: [] as number[], win: [] as number[], raw: [] as number[], hubRates: [] as number[], winRates: [] as number[], rawRates: [] as number[] };
  for (let round = 0; round < ROUNDS; round++) {
    out.hub.push(...(await hubflowChain(rt, plain.chain, marks)));
    out.win.push(...(await hubflowChain(rt, windowed.chain, marks)));
    out.raw.push(...(await rawChain(connection, prefix)));
  }
  for (let round = 0; round < ROUNDS; round++) {
    for (const [dag, rates] of [[plain.fan, out.hubRates], [windowed.fan, out.winRates]] as const) {
      const run = await rt.engine.triggerRun(dag.id);
      rates.push((FAN_OUT + 2) / ((await waitRun(rt, run.id)) / 1000));
    }
    out.rawRates.push(await rawThroughput(connection, prefix, FAN_OUT + 2));
  }
  return out;
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
    };
  } finally {
    await worker.close();
    await sql`drop schema if exists ${sql.id(id)} cascade`.execute(rt.db);
    const redis = new Redis(rt.redis.url);
    const keys = await redis.keys(`hf-${id}*`);
    if (keys.length) await redis.del(...keys);
    redis.disconnect();
    await rt.close();
  }
}
