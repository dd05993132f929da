import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freeLoopbackPort } from '../../server/connections/instance.ts';
import { isUnreachable, outageDelay, untilReachable } from '../../server/connections/outage.ts';
import { pingRedis } from '../../server/connections/redis.ts';
import { loadDags } from '../../server/engine/loader.ts';
import { createLogger } from '../../core/log.ts';
import { tcpProxy, type TcpProxy } from '../tcp-proxy.ts';
import { TEST_DATABASE_URL, TEST_REDIS_URL, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

/*
 * hubflow's processes between TCP proxies this file controls and the real PostgreSQL and Redis:
 * closing a proxy is the outage (the shared services are never touched).
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
let rt: TestRuntime;
let dir: string;
let pg: TcpProxy;
let redis: TcpProxy;

const DAGS = {
  'quick.ts': `import { defineDag, task } from 'hubflow';\nexport default defineDag({ id: 'quick', retry: { attempts: 1 }, tasks: { a: task({ run: () => 'done' }) } });\n`,
  // Long enough to cut PostgreSQL under the watcher while it runs.
  'slow.ts': `import { defineDag, task } from 'hubflow';\nexport default defineDag({ id: 'slow', schedule: { cron: '0 6 * * *', timezone: 'UTC' }, retry: { attempts: 3, base: '100ms', max: '1s' }, tasks: { a: task({ run: () => new Promise((r) => setTimeout(() => r('done'), 6000)) }) } });\n`,
};

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hubflow-outage-'));
  mkdirSync(path.join(dir, 'dags'));
  for (const [name, text] of Object.entries(DAGS)) writeFileSync(path.join(dir, 'dags', name), text);
  rt = await testRuntime(await loadDags(path.join(dir, 'dags')));
  const target = (url: string) => ({ host: new URL(url).hostname, port: Number(new URL(url).port) });
  pg = await tcpProxy(target(TEST_DATABASE_URL));
  redis = await tcpProxy(target(TEST_REDIS_URL));
});

afterAll(async () => {
  await pg?.destroy();
  await redis?.destroy();
  await rt?.close();
  rmSync(dir, { recursive: true, force: true });
});

interface Process {
  stderr(): string;
  stdout(): string;
  exited: Promise<number | null>;
  stop(): Promise<number | null>;
}

/** Starts `hubflow ...` whose PostgreSQL and Redis are behind this file's proxies. */
function hubflow(args: string[], env: Record<string, string> = {}): Process {
  const child = spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], {
    env: {
      ...process.env,
      ...rt.env,
      HUBFLOW_DAGS_DIR: path.join(dir, 'dags'),
      HUBFLOW_LOG_LEVEL: 'info',
      HUBFLOW_DATABASE_URL: pg.url(TEST_DATABASE_URL),
      HUBFLOW_REDIS_URL: redis.url(TEST_REDIS_URL),
      HUBFLOW_PORT: '0',
      ...env,
    },
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return {
    stderr: () => err,
    stdout: () => out,
    exited,
    stop: async () => {
      child.kill('SIGTERM');
      return exited;
    },
  };
}

async function until(what: string, check: () => boolean | Promise<boolean>, from?: Process, timeoutMs = 45_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${from ? `; the process said:\n${from.stderr().slice(-3000)}` : ''}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const lines = (text: string, pattern: RegExp) => text.split('\n').filter((l) => pattern.test(l)).length;

describe('processes wait for their services', () => {
  it('a worker started while PostgreSQL is down waits, says so, and runs tasks once it is back', async () => {
    await pg.close();
    const worker = hubflow(['worker']);
    try {
      await until('the waiting message', () =>
        /waiting for PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/test: ECONNREFUSED \(retrying; 2nd attempt, next in 2 s\)/.test(worker.stderr()),
      );
      expect(await Promise.race([worker.exited.then(() => 'exited'), sleep(1000).then(() => 'running')])).toBe('running');
      await pg.open();
      await until('the worker', () => worker.stderr().includes('worker running'));
      expect(worker.stderr()).toMatch(/PostgreSQL at postgres:\/\/postgres@127\.0\.0\.1:\d+\/test answers again/);
      const run = await rt.engine.triggerRun('quick', {});
      expect((await waitForRun(rt, run.id, 60_000)).state).toBe('success');
    } finally {
      await pg.open();
      expect(await worker.stop(), worker.stderr().slice(-4000)).toBe(0);
    }
  }, 120_000);

  it('a scheduler started while Redis is down waits for it, then schedules', async () => {
    await redis.close();
    const scheduler = hubflow(['scheduler']);
    try {
      await until('the waiting message', () =>
        /waiting for Redis at redis:\/\/127\.0\.0\.1:\d+: ECONNREFUSED \(retrying; 1st attempt, next in 1 s\)/.test(scheduler.stderr()),
      );
      await sleep(1500);
      await redis.open();
      await until('the scheduler', () => scheduler.stderr().includes('scheduler running'));
      await until(
        'a scheduled run of slow',
        async () => (await rt.db.selectFrom('dag_runs').select('id').where('dag_id', '=', 'slow').where('run_type', '=', 'scheduled').execute()).length > 0,
      );
    } finally {
      await redis.open();
      expect(await scheduler.stop(), scheduler.stderr().slice(-4000)).toBe(0);
    }
  }, 120_000);

  it('a worker that loses Redis says so at growing intervals, stays up, and takes tasks when it returns', async () => {
    const worker = hubflow(['worker']);
    try {
      await until('the worker', () => worker.stderr().includes('worker running'));
      await redis.close();
      await sleep(8_000);
      const said = worker.stderr();
      // Attempts 1 s, 2 s, 4 s apart: a handful of lines, not BullMQ's one error per reconnection.
      expect(said).toMatch(/waiting for Redis at redis:\/\/127\.0\.0\.1:\d+: ECONNREFUSED \(retrying; 1st attempt, next in 1 s\)/);
      expect(lines(said, /waiting for Redis/)).toBeLessThanOrEqual(5);
      expect(lines(said, /connection error|^Error:/)).toBe(0);
      await redis.open();
      await until('Redis back', () => /Redis at redis:\/\/127\.0\.0\.1:\d+ answers again/.test(worker.stderr()));
      const run = await rt.engine.triggerRun('quick', {});
      expect((await waitForRun(rt, run.id, 60_000)).state).toBe('success');
    } finally {
      await redis.open();
      expect(await worker.stop(), worker.stderr().slice(-4000)).toBe(0);
    }
  }, 120_000);

  it('dags backfill rides out a PostgreSQL outage under its watcher; a task that ended during it is recorded once, not run again', async () => {
    const backfill = hubflow(['dags', 'backfill', 'slow', '--from', '2026-01-10', '--to', '2026-01-10', '--json'], {
      HUBFLOW_LOCK_MS: '20000',
      HUBFLOW_SWEEP_INTERVAL_MS: '1000',
    });
    await until(
      'the task running',
      async () => {
        const ti = await rt.db
          .selectFrom('task_instances')
          .innerJoin('dag_runs', 'dag_runs.id', 'task_instances.run_id')
          .select('task_instances.state')
          .where('dag_runs.run_type', '=', 'backfill')
          .executeTakeFirst();
        return ti?.state === 'running';
      },
      backfill,
    );
    await pg.close();
    await until('the waiting message', () => backfill.stderr().includes('waiting for PostgreSQL at'), backfill);
    // Past the task's end: its success cannot be recorded until PostgreSQL is back.
    await sleep(7_000);
    await pg.open();
    expect(await backfill.exited, backfill.stderr().slice(-4000)).toBe(0);
    expect(JSON.parse(backfill.stdout())).toEqual([expect.objectContaining({ logical_date: '2026-01-10T06:00:00.000Z', state: 'success' })]);
    expect(backfill.stderr()).toMatch(/PostgreSQL at .* answers again/);
    expect(backfill.stderr()).toContain('recording the success again every second');
    const attempts = await rt.db
      .selectFrom('attempts')
      .innerJoin('task_instances', 'task_instances.id', 'attempts.ti_id')
      .innerJoin('dag_runs', 'dag_runs.id', 'task_instances.run_id')
      .select('attempts.outcome')
      .where('dag_runs.run_type', '=', 'backfill')
      .execute();
    expect(attempts.map((a) => a.outcome)).toEqual(['success']);
  }, 120_000);

  it('a server that loses PostgreSQL answers 5xx meanwhile, says it is waiting, and serves again when it is back', async () => {
    const server = hubflow(['server']);
    try {
      await until('the server', () => /hubflow server at (http:\/\/\S+)/.test(server.stdout()), server);
      const url = /hubflow server at (http:\/\/\S+)/.exec(server.stdout())![1]!;
      expect((await fetch(`${url}/api/runs`)).status).toBe(200);
      await pg.close();
      expect((await fetch(`${url}/api/runs`)).status).toBeGreaterThanOrEqual(500);
      await until('the waiting message', () => server.stderr().includes('waiting for PostgreSQL at'), server);
      await pg.open();
      await until('PostgreSQL back', () => /PostgreSQL at .* answers again/.test(server.stderr()), server);
      expect((await fetch(`${url}/api/runs`)).status).toBe(200);
    } finally {
      await pg.open();
      expect(await server.stop(), server.stderr().slice(-4000)).toBe(0);
    }
  }, 120_000);
});

describe('what is not an outage fails at once', () => {
  it('a database that does not exist, and a Redis password refused: exit 2 with the reason', async () => {
    const noDb = hubflow(['worker'], { HUBFLOW_DATABASE_URL: pg.url(TEST_DATABASE_URL).replace(/\/test$/, '/no_such_database_here') });
    expect(await noDb.exited, noDb.stderr()).toBe(2);
    expect(noDb.stderr()).toContain('database "no_such_database_here" does not exist');
    // A private Redis that wants a password (the shared one has none, and ignores a wrong one).
    const port = await freeLoopbackPort();
    const server = spawn(
      'redis-server',
      ['--port', String(port), '--bind', '127.0.0.1', '--requirepass', 'right-password', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: 'ignore' },
    );
    try {
      await until(
        'the private Redis',
        async () =>
          await pingRedis(`redis://:right-password@127.0.0.1:${port}`, 500).then(
            () => true,
            () => false,
          ),
      );
      const badAuth = hubflow(['scheduler'], { HUBFLOW_REDIS_URL: `redis://:wrong-password@127.0.0.1:${port}` });
      expect(await badAuth.exited, badAuth.stderr()).toBe(2);
      expect(badAuth.stderr()).toMatch(/HUBFLOW_REDIS_URL redis:\/\/:\*\*\*@127\.0\.0\.1:\d+ did not answer PING \(WRONGPASS/);
      expect(badAuth.stderr()).not.toContain('waiting for');
    } finally {
      server.kill('SIGTERM');
    }
  }, 120_000);

  it('a server refusing to bind beyond loopback without a token exits 2 at once, services or not', async () => {
    await pg.close();
    try {
      const server = hubflow(['server'], { HUBFLOW_HOST: '0.0.0.0' });
      expect(await server.exited).toBe(2);
      expect(server.stderr()).toContain('refusing to serve on 0.0.0.0 without authentication: set HUBFLOW_API_TOKEN');
      expect(server.stderr()).not.toContain('waiting for');
    } finally {
      await pg.open();
    }
  });

  it('errors are told apart: unreachable now, or refused', () => {
    expect(isUnreachable(Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isUnreachable(Object.assign(new Error('the database system is starting up'), { code: '57P03' }))).toBe(true);
    expect(isUnreachable(new Error('Connection terminated unexpectedly'))).toBe(true);
    expect(isUnreachable(new AggregateError([Object.assign(new Error('x'), { code: 'ECONNREFUSED' })]))).toBe(true);
    expect(isUnreachable(Object.assign(new Error('password authentication failed for user "x"'), { code: '28P01' }))).toBe(false);
    expect(isUnreachable(Object.assign(new Error('getaddrinfo ENOTFOUND nohost'), { code: 'ENOTFOUND' }))).toBe(false);
    expect([1, 2, 3, 4, 5, 6, 7, 20].map(outageDelay)).toEqual([1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000]);
  });

  it('untilReachable retries only what is unreachable', async () => {
    const log = createLogger('silent');
    let calls = 0;
    const refused = Object.assign(new Error('password authentication failed'), { code: '28P01' });
    await expect(
      untilReachable({ name: 'PostgreSQL', url: 'postgres://h/db' }, log, async () => {
        calls++;
        throw refused;
      }),
    ).rejects.toBe(refused);
    expect(calls).toBe(1);
    calls = 0;
    const value = await untilReachable({ name: 'Redis', url: 'redis://h' }, log, async () => {
      if (++calls < 2) throw Object.assign(new Error('reset'), { code: 'ECONNRESET' });
      return 'ok';
    });
    expect([value, calls]).toEqual(['ok', 2]);
  });
});
