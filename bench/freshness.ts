import { type ChildProcess, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { seedHub } from '../demo/seed.ts';
import { openHub } from '../hub/db.ts';
import { HUB_ENTITIES } from '../hub/entities.ts';
import { ChangeLogSink } from '../cdc/change-log.ts';
import { HistoryApplier } from '../cdc/history.ts';
import { setupCdc } from '../cdc/setup.ts';
import { createLogger } from '../core/log.ts';
import { ensureSchema } from '../tasks/history/apply.ts';
import { openPostgresWarehouse } from '../warehouse/postgres/dialect.ts';
import { startPrivatePostgres } from '../test/cdc/private-pg.ts';
import { warehouseCeiling } from './freshness-ceiling.ts';
import { startSteadyLoad, writeBacklog } from './freshness-load.ts';

/**
 * `npm run bench -- freshness [--duration S] [--rate N] [--backlog N]`: change data capture
 * measured end to end on a 1M-worker hub, in a private PostgreSQL cluster started for the run
 * (`wal_level = logical`, `track_commit_timestamp = on`), with the warehouse in a database of its
 * own in the same cluster (one machine, as production's hub and warehouse are two systems).
 *
 * 1. The publication, slot and initial cut, for the workers only (the load changes only them; a
 *    cut of the demo hub's 2.7M payroll results would only make the bench slower), as
 *    `hubflow cdc setup` takes them.
 * 2. Freshness: `hubflow cdc run` as its own process while N changes/s (inserts, updates,
 *    deletes of workers across tenants) commit for S seconds. Each change's latency is the
 *    warehouse transaction's commit time (the one that wrote it into `<entity>_history`, so into
 *    `<entity>_current`: pg_xact_commit_timestamp of its row) minus the hub transaction's commit
 *    time as the WAL carries it (the very value pg_xact_commit_timestamp gives on the hub:
 *    checked here change by change). Both are the one server's clock.
 * 3. Throughput: the consumer stopped, a backlog of update transactions written, then a fresh
 *    consumer's changes/s from its start streaming to the backlog applied.
 * Peak RSS of each consumer process is read from /proc (VmHWM).
 */

const root = fileURLToPath(new URL('..', import.meta.url));
const WORKERS = Number(process.env.HUBFLOW_BENCH_WORKERS ?? 1_000_000);
const TENANTS = 20;
const SCHEMA = 'hub';
const WAREHOUSE = 'wh';

interface Options {
  duration: number;
  rate: number;
  backlog: number;
}

function parseOptions(argv: string[]): Options {
  const out: Options = { duration: 120, rate: 200, backlog: 200_000 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const name = flag.replace(/^--/, '') as keyof Options;
    const value = Number(argv[i + 1]);
    if (!(name in out) || !flag.startsWith('--')) throw new Error(`freshness: unknown option '${flag}' (have --duration S, --rate N, --backlog N)`);
    if (!Number.isFinite(value) || value <= 0) throw new Error(`freshness: ${flag} takes a positive number, not '${argv[i + 1] ?? ''}'`);
    out[name] = value;
  }
  return out;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const round = (n: number, digits = 3) => Number(n.toFixed(digits));

interface Consumer {
  child: ChildProcess;
  /** performance.now() when it reported streaming. */
  streamingAt: number;
  stop(): Promise<{ peakRssMb: number; cpuSeconds: number }>;
}

function peakRssMb(pid: number): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : 0;
}

/** User and system CPU of a process so far, from /proc (clock ticks of 1/100 s). */
function cpuSecondsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
}

function hubflow(env: NodeJS.ProcessEnv, args: string[]): ChildProcess {
  return spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
}

async function startConsumer(env: NodeJS.ProcessEnv): Promise<Consumer> {
  const child = hubflow(env, ['cdc', 'run']);
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  const streamingAt = await new Promise<number>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('streaming changes')) resolve(performance.now());
    });
    void exited.then(() => reject(new Error(`the consumer exited before streaming:\n${output}`)));
  });
  return {
    child,
    streamingAt,
    async stop() {
      const peak = peakRssMb(child.pid!);
      const cpuSeconds = cpuSecondsOf(child.pid!);
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`the consumer exited ${code}:\n${output.slice(-4000)}`);
      return { peakRssMb: peak, cpuSeconds };
    },
  };
}

async function one<T>(client: pg.Client, text: string): Promise<T> {
  return (await client.query(text)).rows[0] as T;
}

/** Commits a marked change and waits until `workers_current` shows it: everything committed before is applied. */
async function waitCaughtUp(hub: pg.Client, client: pg.Client, timeoutMs: number): Promise<number> {
  const marker = `marker-${Date.now()}`;
  const { rows: changed } = await hub.query<{ tenant_id: string; worker_id: string }>(
    `update ${SCHEMA}.workers set city = $1, updated_at = now() where worker_id = (select min(worker_id) from ${SCHEMA}.workers) returning tenant_id, worker_id`,
    [marker],
  );
  const { tenant_id: tenant, worker_id: worker } = changed[0]!;
  const started = performance.now();
  while (performance.now() - started < timeoutMs) {
    // By key (the current row's index), not by a scan of a million rows every 50 ms.
    const { rows } = await client.query(`select 1 from ${WAREHOUSE}.workers_current where tenant_id = $1 and worker_id = $2 and city = $3`, [
      tenant,
      worker,
      marker,
    ]);
    if (rows.length) return performance.now() - started;
    await sleep(50);
  }
  throw new Error(`the warehouse did not catch up within ${timeoutMs / 1000} s`);
}

interface Latency {
  changes: string;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  walCommitTimeDiffers: string;
}

/** Per change streamed after `afterLsn`: warehouse commit time minus hub commit time. */
async function latencies(client: pg.Client, afterLsn: string): Promise<Latency> {
  return one<Latency>(
    client,
    `with c as (select extract(epoch from pg_xact_commit_timestamp(xmin) - commit_ts)::float8 as s,
                       pg_xact_commit_timestamp(xid::text::xid) <> commit_ts as differs
                from ${WAREHOUSE}.cdc_changes where op <> 'snapshot' and commit_lsn > ${afterLsn})
     select count(*)::text as changes,
            percentile_cont(0.5) within group (order by s) as p50, percentile_cont(0.9) within group (order by s) as p90,
            percentile_cont(0.99) within group (order by s) as p99, max(s) as max,
            count(*) filter (where differs)::text as "walCommitTimeDiffers" from c`,
  );
}

async function appliedChanges(client: pg.Client): Promise<number> {
  const r = await one<{ n: string | null }>(client, `select max(changes)::text as n from ${WAREHOUSE}.cdc_ledger`);
  return Number(r.n ?? 0);
}

export async function runFreshnessBench(argv: string[] = []): Promise<unknown> {
  const opts = parseOptions(argv);
  const pgs = await startPrivatePostgres({
    wal_level: 'logical',
    track_commit_timestamp: 'on',
    max_slot_wal_keep_size: '16GB',
    max_wal_size: '4GB',
    shared_buffers: '512MB',
  });
  // The warehouse (and hubflow's store) in a database of its own, as in production it is another
  // system: the slot then skips the warehouse's own WAL records rather than decode them.
  const whUrl = pgs.url.replace(/\/postgres$/, '/warehouse');
  const hubClient = new pg.Client({ connectionString: pgs.url });
  const client = new pg.Client({ connectionString: whUrl });
  const env = { HUBFLOW_HUB_URL: pgs.url, HUBFLOW_DATABASE_URL: whUrl, HUBFLOW_WAREHOUSE_SCHEMA: WAREHOUSE, HUBFLOW_LOG_LEVEL: 'info' };
  try {
    let t = performance.now();
    const hub = openHub(pgs.url);
    await seedHub(hub, SCHEMA, { tenants: TENANTS, workers: WORKERS, seed: 1 }).finally(() => hub.destroy());
    await hubClient.connect();
    for (const e of Object.values(HUB_ENTITIES)) await hubClient.query(`alter table ${SCHEMA}.${e.table} replica identity full`);
    await hubClient.query(`vacuum analyze`);
    await hubClient.query('create database warehouse');
    await hubClient.query('checkpoint');
    await client.connect();
    const seedSeconds = round((performance.now() - t) / 1000, 1);

    t = performance.now();
    const wh = openPostgresWarehouse(whUrl, WAREHOUSE);
    const setup = await (async () => {
      await ensureSchema(wh, HUB_ENTITIES);
      const source = { hubUrl: pgs.url, schema: SCHEMA, entities: { workers: HUB_ENTITIES.workers! }, slot: 'hubflow_cdc', publication: 'hubflow_pub' };
      return setupCdc(source, new ChangeLogSink(wh, { history: new HistoryApplier(wh, HUB_ENTITIES) }), { log: createLogger('warn') });
    })().finally(() => wh.close());
    const setupSeconds = round((performance.now() - t) / 1000, 1);

    // Freshness under a steady load.
    const steadyConsumer = await startConsumer(env);
    // The slot first reads past the WAL the cut's own warehouse writes made (hub and warehouse
    // share a cluster here): measured apart, so the load's figures are of the steady state.
    const warmUpMs = await waitCaughtUp(hubClient, client, 600_000);
    const { lsn: steadyFrom } = await one<{ lsn: string }>(client, `select max(commit_lsn)::text as lsn from ${WAREHOUSE}.cdc_changes`);
    const load = await startSteadyLoad(pgs.url, opts.rate);
    await sleep(opts.duration * 1000);
    const written = await load.stop();
    const catchUpMs = await waitCaughtUp(hubClient, client, 120_000);
    const steadyRss = await steadyConsumer.stop();
    const latency = await latencies(client, steadyFrom);

    // The warehouse's ceiling, measured while nothing else runs (before the backlog, whose dead
    // rows would have autovacuum working beside it).
    const ceiling = await warehouseCeiling(whUrl, WAREHOUSE);
    // Throughput: a backlog the consumer finds when it starts.
    const before = await appliedChanges(client);
    const backlog = await writeBacklog(pgs.url, opts.backlog);
    const backlogConsumer = await startConsumer(env);
    const deadline = Date.now() + 600_000;
    while ((await appliedChanges(client)) < before + backlog.changes) {
      if (Date.now() > deadline) throw new Error('the backlog was not applied within 10 minutes');
      await sleep(100);
    }
    const applySeconds = (performance.now() - backlogConsumer.streamingAt) / 1000;
    const backlogRss = await backlogConsumer.stop();
    const { size } = await one<{ size: string }>(
      client,
      `select pg_size_pretty(sum(pg_database_size(datname))) as size from pg_database where datname in ('postgres', 'warehouse')`,
    );

    return {
      workers: WORKERS,
      tenants: TENANTS,
      note: 'private PostgreSQL cluster (fsync off): hub and warehouse in two databases of it, on the same machine as the load and the consumer',
      seedSeconds,
      setup: { rows: setup.rows, seconds: setupSeconds, firstCatchUpSeconds: round(warmUpMs / 1000, 1) },
      freshness: {
        load: { ratePerSecond: opts.rate, ...written, achievedPerSecond: round(written.changes / written.seconds, 1) },
        measuredAs: 'warehouse commit of the batch that wrote <entity>_history (pg_xact_commit_timestamp) minus the hub commit time from the WAL',
        changesMeasured: Number(latency.changes),
        walCommitTimeDiffersFromHub: Number(latency.walCommitTimeDiffers),
        p50Seconds: round(latency.p50),
        p90Seconds: round(latency.p90),
        p99Seconds: round(latency.p99),
        maxSeconds: round(latency.max),
        markerVisibleAfterLoadMs: Math.round(catchUpMs),
        consumerPeakRssMb: steadyRss.peakRssMb,
      },
      throughput: {
        backlog,
        applySeconds: round(applySeconds, 2),
        changesPerSecond: Math.round(backlog.changes / applySeconds),
        consumerPeakRssMb: backlogRss.peakRssMb,
        consumerCpuMicrosecondsPerChange: Math.round((backlogRss.cpuSeconds * 1e6) / backlog.changes),
        warehouseCeiling: {
          ...ceiling,
          measuredAs: "a batch's warehouse writes alone (change log and history), planned batches of updates to random keys, one session, rolled back",
        },
      },
      databaseSize: size,
      targets: { p50Seconds: 5, p99Seconds: 30, consumerPeakRssMb: 300, changesPerSecond: 20_000 },
    };
  } finally {
    await client.end().catch(() => undefined);
    await hubClient.end().catch(() => undefined);
    await pgs.stop();
  }
}
