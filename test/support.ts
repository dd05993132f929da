import { randomUUID } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Redis } from 'ioredis';
import { sql } from 'kysely';
import { loadConfig } from '../core/config.ts';
import type { Dag } from '../server/engine/dag.ts';
import { registryOf, type DagRegistry } from '../server/engine/loader.ts';
import type { Resource } from '../server/engine/resources.ts';
import { createLogger } from '../core/log.ts';
import { openRuntime, type Runtime } from '../server/runtime.ts';
import type { DagRunRow } from '../server/store/schema.ts';

// The services CI starts on this machine; override to point the tests elsewhere.
export const TEST_DATABASE_URL = process.env.HUBFLOW_TEST_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
export const TEST_REDIS_URL = process.env.HUBFLOW_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestRuntime extends Runtime {
  /** The env a child `hubflow` process needs to join this runtime's store and queues. */
  env: Record<string, string>;
}

/** A runtime with its own PostgreSQL schema and BullMQ prefix, removed by `close()`. */
export async function testRuntime(dags: Dag[] | DagRegistry, env: Record<string, string> = {}, resources: Resource[] = []): Promise<TestRuntime> {
  const id = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
  const vars = {
    HUBFLOW_DATABASE_URL: TEST_DATABASE_URL,
    HUBFLOW_REDIS_URL: TEST_REDIS_URL,
    HUBFLOW_DB_SCHEMA: id,
    HUBFLOW_QUEUE_PREFIX: `hf-${id}`,
    HUBFLOW_LOG_LEVEL: process.env.HUBFLOW_LOG_LEVEL ?? 'silent',
    ...env,
  };
  const config = loadConfig(vars);
  const registry = Array.isArray(dags) ? registryOf(dags, resources) : dags;
  const rt = await openRuntime({ config, dags: registry, log: createLogger(config.HUBFLOW_LOG_LEVEL ?? 'silent') });
  return {
    ...rt,
    env: vars,
    async close() {
      await sql`drop schema if exists ${sql.id(id)} cascade`.execute(rt.db);
      await rt.close();
      const redis = new Redis(TEST_REDIS_URL);
      const keys = await redis.keys(`hf-${id}:*`);
      if (keys.length) await redis.del(...keys);
      redis.disconnect();
    },
  };
}

export async function waitForRun(rt: Runtime, runId: number, timeoutMs = 30_000): Promise<DagRunRow> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const run = await rt.db.selectFrom('dag_runs').selectAll().where('id', '=', runId).executeTakeFirstOrThrow();
    if (run.state === 'success' || run.state === 'failed' || run.state === 'cancelled') return run;
    if (Date.now() > deadline) {
      // Where it is stuck, so a timeout in CI says more than "still running".
      const tis = await rt.db
        .selectFrom('task_instances')
        .select(['task_id', 'map_index', 'state', 'try_number', 'error', 'deferred_reason'])
        .where('run_id', '=', runId)
        .execute();
      throw new Error(`run ${runId} still ${run.state} after ${timeoutMs} ms: ${JSON.stringify(tis)}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

export async function taskStates(rt: Runtime, runId: number): Promise<Record<string, string>> {
  const rows = await rt.db.selectFrom('task_instances').select(['task_id', 'map_index', 'state']).where('run_id', '=', runId).orderBy('id').execute();
  return Object.fromEntries(rows.map((r) => [r.map_index >= 0 ? `${r.task_id}[${r.map_index}]` : r.task_id, r.state]));
}

/** A local HTTP endpoint for HUBFLOW_ALERT_WEBHOOK that keeps every alert posted to it. */
export interface AlertWebhook<A> {
  url: string;
  alerts: A[];
  close(): void;
}

export async function alertWebhook<A = { kind: string; message: string }>(): Promise<AlertWebhook<A>> {
  const alerts: A[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      alerts.push(JSON.parse(body) as A);
      res.writeHead(204).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/alerts`, alerts, close: () => server.close() };
}
