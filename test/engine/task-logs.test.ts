import { setTimeout as sleep } from 'node:timers/promises';
import { defineDag, SkipTaskError, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { Scheduler } from '../../server/engine/scheduler.ts';
import { logRetentionMs, pruneTaskLogs, readTaskLog } from '../../server/engine/task-log-store.ts';
import { HEAD_BYTES, TAIL_BYTES } from '../../server/engine/task-logs.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const TENANTS = ['acme', 'globex', 'initech', 'umbrella', 'hooli', 'stark', 'wayne', 'wonka'];

const dag = defineDag({
  id: 'logging',
  tasks: {
    flaky: task({
      retry: { attempts: 2, base: '0s' },
      run: async (ctx) => {
        ctx.log.info({ rows: 12 }, `reading try ${ctx.tryNumber}`);
        console.log('console says %s', `try ${ctx.tryNumber}`);
        process.stdout.write(`stdout part one of try ${ctx.tryNumber}`);
        await sleep(5);
        process.stdout.write(' and part two\n');
        process.stderr.write(`connecting to postgres://loader:hunter2@db.internal/hub on try ${ctx.tryNumber}\n`);
        if (ctx.tryNumber === 1) throw new Error('the hub went away');
        ctx.log.warn('done, late');
        return 'ok';
      },
    }),
    quiet: task({ after: ['flaky'], run: () => 'nothing to say' }),
    tenants: task({ after: ['quiet'], run: () => TENANTS }),
    per_tenant: task<string>({
      map: 'tenants',
      run: async (ctx) => {
        for (let i = 0; i < 5; i++) {
          console.log(`${ctx.item} line ${i}`);
          ctx.log.info(`${ctx.item} logged ${i}`);
          await sleep(Math.random() * 10);
        }
      },
    }),
    chatty: task({
      after: ['per_tenant'],
      run: () => {
        const line = 'x'.repeat(999);
        for (let i = 0; i < 1_500; i++) process.stdout.write(`${i} ${line}\n`);
        console.log('the very last line');
      },
    }),
    slow: task({
      after: ['chatty'],
      trigger: 'all_done',
      timeout: '300ms',
      retry: { attempts: 1 },
      run: async () => {
        console.warn('starting something slow');
        await sleep(2_000);
        console.log('never kept: the try has timed out');
      },
    }),
  },
});

/** Released by the test once it has seen the first line of a try still running. */
let release: () => void = () => undefined;
const live = defineDag({
  id: 'live-logging',
  tasks: {
    long: task({
      run: async (ctx) => {
        ctx.log.info('halfway');
        await new Promise<void>((resolve) => {
          release = resolve;
        });
        console.log('finished');
      },
    }),
  },
});

const stopping = defineDag({
  id: 'stopping-logging',
  tasks: {
    skipper: task({
      run: () => {
        console.log('looking for a new snapshot');
        throw new SkipTaskError('no new snapshot since yesterday');
      },
    }),
    waiter: task({
      run: async (ctx) => {
        console.log('waiting for the hub');
        await new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason)));
      },
    }),
  },
});

let rt: TestRuntime;
let worker: Executor;
let runId: number;
beforeAll(async () => {
  rt = await testRuntime([dag, live, stopping]);
  worker = startWorker(rt, { concurrency: 8 });
  const run = await rt.engine.triggerRun('logging');
  runId = run.id;
  expect((await waitForRun(rt, run.id)).state).toBe('failed');
}, 60_000);
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

const texts = (log: Awaited<ReturnType<typeof readTaskLog>>) => log.lines.map((l) => [l.level, l.line]);

describe('each try of a task keeps its own log', () => {
  it('keeps ctx.log, console and stdout/stderr lines of a failed try and of the retry apart, secrets masked', async () => {
    const first = await readTaskLog(rt.db, runId, 'flaky', { try: 1 });
    expect(first.tries.map((t) => [t.try_number, t.outcome])).toEqual([
      [1, 'retry'],
      [2, 'success'],
    ]);
    const lines = texts(first);
    expect(lines.slice(0, 4)).toEqual([
      ['info', 'reading try 1 {"rows":12}'],
      ['info', 'console says try 1'],
      ['stdout', 'stdout part one of try 1 and part two'],
      ['stderr', 'connecting to postgres://loader:***@db.internal/hub on try 1'],
    ]);
    expect(lines[4]![0]).toBe('error');
    expect(lines[4]![1]).toMatch(/^try 1 of 2 failed: Error: the hub went away\n\s+at /);
    expect(lines).toHaveLength(5);

    // The latest try by default.
    const latest = await readTaskLog(rt.db, runId, 'flaky');
    expect(latest.try).toBe(2);
    expect(texts(latest)).toEqual([
      ['info', 'reading try 2 {"rows":12}'],
      ['info', 'console says try 2'],
      ['stdout', 'stdout part one of try 2 and part two'],
      ['stderr', 'connecting to postgres://loader:***@db.internal/hub on try 2'],
      ['warn', 'done, late'],
    ]);
    expect(latest.lines.map((l) => l.seq)).toEqual([1, 2, 3, 4, 5]);
  });

  it('writes nothing for a try that logs nothing', async () => {
    const quiet = await readTaskLog(rt.db, runId, 'quiet');
    expect(quiet.tries).toHaveLength(1);
    expect(quiet.lines).toEqual([]);
  });

  it('gives each of several tasks running at once in one worker only its own lines', async () => {
    for (const [i, tenant] of TENANTS.entries()) {
      const log = await readTaskLog(rt.db, runId, 'per_tenant', { map: i });
      expect(texts(log)).toEqual(
        [0, 1, 2, 3, 4].flatMap((n) => [
          ['info', `${tenant} line ${n}`],
          ['info', `${tenant} logged ${n}`],
        ]),
      );
    }
    // They did run at once: their tries overlap.
    const spans = await rt.db
      .selectFrom('attempts as a')
      .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
      .select(['a.started_at', 'a.ended_at'])
      .where('ti.run_id', '=', runId)
      .where('ti.task_id', '=', 'per_tenant')
      .execute();
    const overlapping = spans.some((a) => spans.some((b) => a !== b && a.started_at < b.ended_at! && b.started_at < a.ended_at!));
    expect(overlapping).toBe(true);
  });

  it('keeps the first and the last lines of a try that prints more than the cap, saying how much it cut', async () => {
    const log = await readTaskLog(rt.db, runId, 'chatty');
    const bytes = log.lines.reduce((n, l) => n + Buffer.byteLength(l.line) + 1, 0);
    expect(bytes).toBeLessThanOrEqual(HEAD_BYTES + TAIL_BYTES + 200);
    expect(log.lines[0]!.line).toBe(`0 ${'x'.repeat(999)}`);
    const marker = log.lines.find((l) => l.line.startsWith('… truncated'));
    expect(marker?.level).toBe('warn');
    const cut = Number(/truncated (\d+) bytes/.exec(marker!.line)![1]);
    expect(cut + bytes).toBeGreaterThan(1_500 * 1_000);
    expect(log.lines.at(-1)).toMatchObject({ level: 'info', line: 'the very last line' });
    expect(log.lines.at(-2)!.line).toBe(`1499 ${'x'.repeat(999)}`);
    // Numbered in order, the marker between the head and the tail.
    expect(log.lines.map((l) => l.seq)).toEqual(log.lines.map((_, i) => i + 1));
  });

  it('ends a timed-out try with its lines and the timeout, and keeps nothing it prints later', async () => {
    await sleep(2_000);
    const log = await readTaskLog(rt.db, runId, 'slow');
    expect(log.lines.map((l) => l.level)).toEqual(['warn', 'error']);
    expect(log.lines[0]!.line).toBe('starting something slow');
    expect(log.lines[1]!.line).toMatch(/^try 1 of 1 failed: TaskTimeoutError: timed out after 300 ms/);
  });

  it('stores the lines of a try still running within about a second, and the rest when it ends', async () => {
    const run = await rt.engine.triggerRun('live-logging');
    const started = Date.now();
    let seen: string[] = [];
    while (!seen.length && Date.now() - started < 10_000) {
      await sleep(50);
      seen = await readTaskLog(rt.db, run.id, 'long').then(
        (log) => log.lines.map((l) => l.line),
        () => [],
      );
    }
    expect(seen).toEqual(['halfway']);
    const instance = await rt.db.selectFrom('task_instances').select('state').where('run_id', '=', run.id).executeTakeFirstOrThrow();
    expect(instance.state).toBe('running');
    release();
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect((await readTaskLog(rt.db, run.id, 'long')).lines.map((l) => l.line)).toEqual(['halfway', 'finished']);
  });

  it('ends a skipped try and a cancelled one with a line saying so', async () => {
    const run = await rt.engine.triggerRun('stopping-logging');
    const linesOf = async (taskId: string) => (await readTaskLog(rt.db, run.id, taskId).catch(() => ({ lines: [] }))).lines.map((l) => [l.level, l.line]);
    const until = async (taskId: string, count: number) => {
      for (let waited = 0; (await linesOf(taskId)).length < count && waited < 10_000; waited += 50) await sleep(50);
      return linesOf(taskId);
    };
    await until('waiter', 1);
    await rt.engine.cancelRuns({ runIds: [run.id], reason: 'hub maintenance' });
    expect(await until('waiter', 2)).toEqual([
      ['info', 'waiting for the hub'],
      ['warn', 'cancelled: run cancelled: hub maintenance'],
    ]);
    expect(await until('skipper', 2)).toEqual([
      ['info', 'looking for a new snapshot'],
      ['info', 'skipped: no new snapshot since yesterday'],
    ]);
  });

  it('names what is missing: a run, a task, a try, a map index', async () => {
    await expect(readTaskLog(rt.db, 999_999, 'flaky')).rejects.toThrow('no run 999999');
    await expect(readTaskLog(rt.db, runId, 'nope')).rejects.toThrow(`run ${runId} (DAG 'logging') has no task 'nope'`);
    await expect(readTaskLog(rt.db, runId, 'flaky', { try: 3 })).rejects.toThrow(`task 'flaky' of run ${runId} has no try 3: its tries are 1 to 2`);
    await expect(readTaskLog(rt.db, runId, 'per_tenant')).rejects.toThrow('is mapped over 8 items: name one with map index 0 to 7');
    await expect(readTaskLog(rt.db, runId, 'per_tenant', { map: 8 })).rejects.toThrow('has no map index 8: its instances are 0 to 7');
  });
});

describe('retention', () => {
  it('refuses a retention that is not a duration, naming the setting', () => {
    expect(logRetentionMs({ HUBFLOW_LOG_RETENTION: '30d' })).toBe(30 * 86_400_000);
    expect(() => logRetentionMs({ HUBFLOW_LOG_RETENTION: '30 days' })).toThrow(/^HUBFLOW_LOG_RETENTION: '30 days' is not a duration/);
  });

  it('is applied by the scheduler: lines older than HUBFLOW_LOG_RETENTION go, newer ones stay, in bounded batches', async () => {
    const count = async () =>
      Number(
        (
          await rt.db
            .selectFrom('task_logs')
            .select((eb) => eb.fn.countAll().as('n'))
            .executeTakeFirstOrThrow()
        ).n,
      );
    const before = await count();
    expect(before).toBeGreaterThan(100);
    const day = 86_400_000;
    const at = (offset: number) => () => new Date(Date.now() + offset);
    await new Scheduler(rt.engine, rt.log, { tickMs: 1_000, sweepMs: 0, now: at(29 * day) }).tick();
    expect(await count()).toBe(before);
    // A bounded pass deletes at most its batches' worth.
    expect(await pruneTaskLogs(rt.db, new Date(Date.now() + day), 10, 3)).toBe(30);
    expect(await count()).toBe(before - 30);
    await new Scheduler(rt.engine, rt.log, { tickMs: 1_000, sweepMs: 0, now: at(31 * day) }).tick();
    expect(await count()).toBe(0);
  });
});
