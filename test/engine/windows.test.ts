import { Redis } from 'ioredis';
import { afterEach, describe, expect, it } from 'vitest';
import { RetryableError, defineDag, defineResource, task } from 'hubflow';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { TEST_REDIS_URL, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let worker: Executor | undefined;
afterEach(async () => {
  await worker?.close();
  await rt?.close();
  rt = worker = undefined;
});

const iso = (ms: number) => new Date(ms).toISOString();

/** A resource held from `fromMs` to `toMs` (epoch ms) by a one-off blackout. */
function heldResource(id: string, fromMs: number, toMs: number, extra: { onBlackout?: 'finish' | 'cancel' } = {}) {
  return defineResource({ id, deferJitter: '300ms', ...extra, blackouts: [{ reason: 'payroll batch', from: iso(fromMs), to: iso(toMs) }] });
}

async function attempts(runtime: TestRuntime, runId: number, taskId: string) {
  return runtime.db
    .selectFrom('attempts as a')
    .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
    .select(['a.try_number', 'a.outcome', 'a.started_at', 'a.ended_at', 'a.error'])
    .where('ti.run_id', '=', runId)
    .where('ti.task_id', '=', taskId)
    .orderBy('a.try_number')
    .execute();
}

describe('a task whose resource is in blackout', () => {
  it('waits as a deferred, delayed job and starts only after the window ends (within jitter)', async () => {
    const windowEnd = Date.now() + 2_000;
    const payroll = heldResource('payroll-db', Date.now() - 60_000, windowEnd);
    const dag = defineDag({ id: 'sync', tasks: { read: task({ uses: ['payroll-db'], run: () => 'read' }) } });
    rt = await testRuntime([dag], {}, [payroll]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('sync');

    await new Promise((r) => setTimeout(r, 300));
    const waiting = await rt.db
      .selectFrom('task_instances')
      .select(['state', 'deferred_until', 'deferred_reason'])
      .where('run_id', '=', run.id)
      .executeTakeFirstOrThrow();
    expect(waiting.state).toBe('deferred');
    expect(waiting.deferred_reason).toBe(`payroll-db: payroll batch until ${iso(windowEnd)}`);
    expect(waiting.deferred_until!.getTime()).toBeGreaterThanOrEqual(windowEnd);
    const jobs = await rt.engine.dispatcher.queue.getDelayed();
    expect(jobs.map((j) => j.data.deferral?.reason)).toEqual([`payroll-db: payroll batch until ${iso(windowEnd)}`]);
    const app = await createServer(rt);
    const api = (await app.inject({ method: 'GET', url: `/api/runs/${run.id}` })).json<{ task_instances: { state: string; deferred_reason: string }[] }>();
    expect(api.task_instances).toEqual([expect.objectContaining({ state: 'deferred', deferred_reason: `payroll-db: payroll batch until ${iso(windowEnd)}` })]);
    await app.close();

    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const [attempt] = await attempts(rt, run.id, 'read');
    expect(attempt!.started_at.getTime()).toBeGreaterThanOrEqual(windowEnd);
    expect(attempt!.started_at.getTime()).toBeLessThan(windowEnd + 300 + 1_500);
  });

  it('moves a retry whose backoff would land inside a blackout past the window', async () => {
    const opens = Date.now() + 1_000;
    const closes = opens + 2_000;
    const payroll = heldResource('payroll-db', opens, closes);
    const dag = defineDag({
      id: 'flaky-sync',
      tasks: {
        read: task({
          uses: ['payroll-db'],
          retry: { attempts: 2, base: '200ms', max: '200ms', jitter: 'none' },
          run: async (ctx) => {
            if (ctx.tryNumber === 1) {
              // Fails just before the window opens; its 200 ms backoff would end inside it.
              await new Promise((r) => setTimeout(r, Math.max(0, opens - 100 - Date.now())));
              throw new RetryableError('lock timeout');
            }
            return 'read';
          },
        }),
      },
    });
    rt = await testRuntime([dag], {}, [payroll]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('flaky-sync');
    expect((await waitForRun(rt, run.id, 15_000)).state).toBe('success');
    const [first, second] = await attempts(rt, run.id, 'read');
    expect(first!.outcome).toBe('retry');
    expect(first!.ended_at!.getTime()).toBeLessThan(opens);
    expect(second!.started_at.getTime()).toBeGreaterThanOrEqual(closes);
    expect(second!.started_at.getTime()).toBeLessThan(closes + 300 + 1_500);
  });

  it("with onBlackout 'cancel', aborts a running task when the window opens and retries it after", async () => {
    const opens = Date.now() + 800;
    const closes = opens + 1_000;
    const payroll = heldResource('payroll-db', opens, closes, { onBlackout: 'cancel' });
    const dag = defineDag({
      id: 'long-read',
      tasks: {
        read: task({
          uses: ['payroll-db'],
          retry: { attempts: 2, base: '10ms' },
          run: (ctx) => (ctx.tryNumber === 1 ? new Promise((r) => setTimeout(r, 10_000)) : 'read'),
        }),
      },
    });
    rt = await testRuntime([dag], {}, [payroll]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('long-read');
    expect((await waitForRun(rt, run.id, 15_000)).state).toBe('success');
    const [first, second] = await attempts(rt, run.id, 'read');
    expect(first!.outcome).toBe('retry');
    expect((first!.error as { message: string }).message).toContain('cancelled: payroll-db entered a blackout (payroll batch)');
    expect(Math.abs(first!.ended_at!.getTime() - opens)).toBeLessThan(1_000);
    expect(second!.started_at.getTime()).toBeGreaterThanOrEqual(closes);
  });

  it("with onBlackout 'finish' (the default), lets a running task finish", async () => {
    const opens = Date.now() + 500;
    const payroll = heldResource('payroll-db', opens, opens + 5_000);
    const dag = defineDag({
      id: 'finishing',
      tasks: { read: task({ uses: ['payroll-db'], run: () => new Promise((r) => setTimeout(() => r('read'), 1_000)) }) },
    });
    rt = await testRuntime([dag], {}, [payroll]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('finishing');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const [only] = await attempts(rt, run.id, 'read');
    expect(only!.ended_at!.getTime()).toBeGreaterThan(opens);
  });
});

describe('the recovery sweep', () => {
  it('gives a deferred task whose job was lost a new one that still waits for the window', async () => {
    const windowEnd = Date.now() + 2_500;
    const payroll = heldResource('payroll-db', Date.now() - 1_000, windowEnd);
    const dag = defineDag({ id: 'lost', tasks: { read: task({ uses: ['payroll-db'], run: () => 'read' }) } });
    rt = await testRuntime([dag], {}, [payroll]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('lost');
    const redis = new Redis(TEST_REDIS_URL);
    const keys = await redis.keys(`${rt.config.HUBFLOW_QUEUE_PREFIX}:*`);
    await redis.del(...keys);
    redis.disconnect();
    expect(await rt.engine.sweep()).toBe(1);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const [attempt] = await attempts(rt, run.id, 'read');
    expect(attempt!.started_at.getTime()).toBeGreaterThanOrEqual(windowEnd);
  });
});
