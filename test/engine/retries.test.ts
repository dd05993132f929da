import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RetryableError, defineDag, task } from 'hubflow';
import type { Executor } from '../../server/engine/executor.ts';
import { backoffCeiling, backoffDelay, DEFAULT_RETRY } from '../../server/engine/retry.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

describe('backoff', () => {
  const policy = { ...DEFAULT_RETRY, baseMs: 100, maxMs: 1_000 };

  it('doubles the ceiling per failure up to the cap', () => {
    expect([1, 2, 3, 4, 5, 9].map((n) => backoffCeiling(policy, n))).toEqual([100, 200, 400, 800, 1_000, 1_000]);
  });

  it('draws full jitter from [0, ceiling] and spreads the draws', () => {
    for (const failures of [1, 3, 6]) {
      const draws = Array.from({ length: 2_000 }, () => backoffDelay(policy, failures));
      const ceiling = backoffCeiling(policy, failures);
      expect(Math.min(...draws)).toBeGreaterThanOrEqual(0);
      expect(Math.max(...draws)).toBeLessThanOrEqual(ceiling);
      // Uniform over [0, ceiling]: the mean sits near the middle, and both halves are used.
      const mean = draws.reduce((a, b) => a + b, 0) / draws.length;
      expect(mean).toBeGreaterThan(ceiling * 0.4);
      expect(mean).toBeLessThan(ceiling * 0.6);
    }
  });

  it('uses the ceiling itself without jitter', () => {
    expect(backoffDelay({ ...policy, jitter: 'none' }, 3)).toBe(400);
  });
});

let rt: TestRuntime | undefined;
let worker: Executor;
afterEach(async () => {
  await worker?.close();
  await rt?.close();
  rt = undefined;
});

describe('retries on real queues', () => {
  it('retries a failing task with jittered delays under the cap, recording every attempt', async () => {
    const starts: number[] = [];
    const dag = defineDag({
      id: 'flaky',
      tasks: {
        flaky: task({
          retry: { attempts: 4, base: '150ms', max: '300ms', jitter: 'full' },
          run: (ctx) => {
            starts.push(Date.now());
            if (ctx.tryNumber < 4) throw new RetryableError(`deadlock detected (try ${ctx.tryNumber})`);
            return 'ok';
          },
        }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('flaky');
    expect((await waitForRun(rt, run.id)).state).toBe('success');

    const attempts = await rt.db.selectFrom('attempts').select(['try_number', 'outcome', 'started_at', 'ended_at', 'error']).orderBy('try_number').execute();
    expect(attempts.map((a) => [a.try_number, a.outcome])).toEqual([
      [1, 'retry'],
      [2, 'retry'],
      [3, 'retry'],
      [4, 'success'],
    ]);
    expect((attempts[0]!.error as { message: string }).message).toBe('deadlock detected (try 1)');
    // Each wait is within [0, min(cap, base * 2^(n-1))] plus dispatch overhead.
    const ceilings = [150, 300, 300];
    for (let i = 1; i < attempts.length; i++) {
      const wait = new Date(attempts[i]!.started_at).getTime() - new Date(attempts[i - 1]!.ended_at!).getTime();
      expect(wait).toBeGreaterThanOrEqual(0);
      expect(wait).toBeLessThan(ceilings[i - 1]! + 600);
    }
    expect(starts).toHaveLength(4);
  });

  it('dead-letters a task after its last try and escalates once', async () => {
    const dag = defineDag({
      id: 'doomed',
      owner: 'payroll-data',
      tasks: { doomed: task({ retry: { attempts: 2, base: '10ms' }, run: () => Promise.reject(new Error('ECONNRESET')) }) },
    });
    rt = await testRuntime([dag]);
    const escalations: unknown[] = [];
    Object.defineProperty(rt.engine, 'escalate', { value: async (e: unknown) => void escalations.push(e) });
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('doomed');
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    const dead = await rt.db.selectFrom('dead_letters').selectAll().execute();
    expect(dead).toMatchObject([{ task_id: 'doomed', tries: 2, error: { message: 'ECONNRESET' } }]);
    await new Promise((r) => setTimeout(r, 50));
    expect(escalations).toEqual([
      expect.objectContaining({ kind: 'dead_letter', dagId: 'doomed', taskId: 'doomed', tries: 2, owner: 'payroll-data', message: 'ECONNRESET' }),
    ]);
  });

  it('posts the escalation to HUBFLOW_ALERT_WEBHOOK', async () => {
    const received: unknown[] = [];
    const hook = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ method: req.method, type: req.headers['content-type'], body: JSON.parse(body) as unknown });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => hook.listen(0, '127.0.0.1', r));
    try {
      const dag = defineDag({
        id: 'alerting',
        tasks: { load: task({ retry: { attempts: 1 }, run: () => Promise.reject(new Error('warehouse refused the COPY')) }) },
      });
      rt = await testRuntime([dag], { HUBFLOW_ALERT_WEBHOOK: `http://127.0.0.1:${(hook.address() as AddressInfo).port}/alerts` });
      worker = startWorker(rt);
      const run = await rt.engine.triggerRun('alerting');
      expect((await waitForRun(rt, run.id)).state).toBe('failed');
      const deadline = Date.now() + 5_000;
      while (!received.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
      expect(received).toEqual([
        {
          method: 'POST',
          type: 'application/json',
          body: expect.objectContaining({
            source: 'hubflow',
            kind: 'dead_letter',
            dagId: 'alerting',
            runId: run.id,
            taskId: 'load',
            tries: 1,
            message: 'warehouse refused the COPY',
          }),
        },
      ]);
    } finally {
      hook.close();
    }
  });

  it('aborts a task past its timeout through its signal, and retries it', async () => {
    let aborted = 0;
    const dag = defineDag({
      id: 'slow',
      tasks: {
        slow: task({
          timeout: '200ms',
          retry: { attempts: 2, base: '10ms' },
          run: (ctx) =>
            new Promise((resolve, reject) => {
              if (ctx.tryNumber === 2) return resolve('fast enough');
              const timer = setTimeout(resolve, 10_000);
              ctx.signal.addEventListener('abort', () => {
                aborted++;
                clearTimeout(timer);
                reject(ctx.signal.reason);
              });
            }),
        }),
      },
    });
    rt = await testRuntime([dag]);
    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('slow');
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(aborted).toBe(1);
    const attempts = await rt.db.selectFrom('attempts').select(['outcome', 'error']).orderBy('try_number').execute();
    expect(attempts).toEqual([
      { outcome: 'retry', error: expect.objectContaining({ name: 'TaskTimeoutError', message: 'timed out after 200 ms' }) },
      { outcome: 'success', error: null },
    ]);
  });
});
