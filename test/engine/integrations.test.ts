import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import type { Executor } from '../../server/engine/executor.ts';
import { checkIntegrations } from '../../server/engine/integrations.ts';
import type { Scheduler } from '../../server/engine/scheduler.ts';
import { startScheduler, startWorker } from '../../server/processes.ts';
import { alertWebhook, testRuntime, waitForRun, type AlertWebhook, type TestRuntime } from '../support.ts';

const noop = task({ run: () => null });
const integration = { name: 'workers-to-warehouse', target: 'warehouse', pattern: 'batch', slo: { successRate: 0.9 } } as const;

describe('an integration declared on a DAG', () => {
  it('is compiled with its durations and the DAG owner', () => {
    const dag = defineDag({
      id: 'sync',
      owner: 'data-platform',
      integration: { ...integration, slo: { latency: { p50: '2h', p99: '6h' }, successRate: 0.99, deadLetters: { depth: 0, dwell: '4h' } } },
      tasks: { noop },
    });
    expect(dag.integration).toEqual({
      name: 'workers-to-warehouse',
      target: 'warehouse',
      pattern: 'batch',
      owner: 'data-platform',
      slo: { latencyMs: { p50: 7_200_000, p99: 21_600_000 }, successRate: 0.99, deadLetters: { depth: 0, dwellMs: 14_400_000 } },
    });
  });

  it.each([
    [{ ...integration, pattern: 'stream' }, /integration\.pattern/],
    [{ ...integration, slo: { latency: { p50: '2 hours', p99: '6h' } } }, /integration\.slo\.latency\.p50: '2 hours' is not a duration/],
    [{ ...integration, slo: { latency: { p50: '6h', p99: '2h' } } }, /integration\.slo\.latency\.p99: must be at least p50 \(6h\)/],
    [{ ...integration, slo: { successRate: 99 } }, /integration\.slo\.successRate: must be at most 1/],
    [{ ...integration, slo: { deadLetters: { depth: 1 } } }, /integration\.slo\.deadLetters\.dwell/],
    [{ ...integration, slo: {} }, /integration\.slo: declare at least one SLO/],
    [{ ...integration, slo: { successRate: 0.9, latencyP50: '1h' } }, /integration\.slo\.latencyP50: unknown option/],
  ])('refuses a bad declaration naming the field (%#)', (bad, message) => {
    expect(() => defineDag({ id: 'sync', integration: bad as never, tasks: { noop } })).toThrow(message);
  });
});

let rt: TestRuntime | undefined;
let worker: Executor | undefined;
let scheduler: Scheduler | undefined;
let hook: AlertWebhook<{ kind: string; dagId: string; message: string; details: { slo: string; measured: number } }> | undefined;
afterEach(async () => {
  await scheduler?.stop();
  await worker?.close();
  await rt?.close();
  hook?.close();
  rt = worker = scheduler = hook = undefined;
});

describe('an integration whose runs fail', () => {
  it('breaches its success SLO and alerts once per breach', async () => {
    hook = await alertWebhook();
    const dag = defineDag({
      id: 'flaky-sync',
      owner: 'payroll-data',
      integration,
      tasks: {
        load: task({
          retry: { attempts: 1 },
          run: (ctx) => {
            if ((ctx.conf as { fail?: boolean }).fail) throw new Error('warehouse refused the load');
            return 'loaded';
          },
        }),
      },
    });
    rt = await testRuntime([dag], { HUBFLOW_ALERT_WEBHOOK: hook.url });
    worker = startWorker(rt);
    for (const fail of [false, true]) await waitForRun(rt, (await rt.engine.triggerRun('flaky-sync', { conf: { fail } })).id);

    const first = await checkIntegrations(rt.engine);
    expect(first.statuses[0]).toMatchObject({ integration: 'workers-to-warehouse', met: false, sli: { finishedRuns: 2, succeededRuns: 1, successRate: 0.5 } });
    expect(first.alerted).toEqual(['flaky-sync/success_rate']);
    expect((await checkIntegrations(rt.engine)).alerted).toEqual([]);

    // A window with no finished runs in it meets the SLO: the breach ends, and the next one alerts again.
    await new Promise((r) => setTimeout(r, 1_100));
    expect((await checkIntegrations(rt.engine, 1_000)).recovered).toEqual(['flaky-sync/success_rate']);
    expect((await checkIntegrations(rt.engine)).alerted).toEqual(['flaky-sync/success_rate']);

    const breaches = hook.alerts.filter((a) => a.kind === 'slo_breach');
    expect(breaches).toHaveLength(2);
    expect(breaches[0]).toMatchObject({
      dagId: 'flaky-sync',
      owner: 'payroll-data',
      details: { slo: 'success_rate', measured: 0.5 },
      message: expect.stringContaining('50.00% (1 of 2 finished runs succeeded); SLO 90.00%'),
    });
  });
});

describe('the scheduler', () => {
  it('checks the SLOs with its sweep and alerts a breach once, however many sweeps see it', async () => {
    hook = await alertWebhook();
    const dag = defineDag({ id: 'failing-sync', integration, tasks: { load: task({ retry: { attempts: 1 }, run: () => Promise.reject(new Error('down')) }) } });
    rt = await testRuntime([dag], { HUBFLOW_ALERT_WEBHOOK: hook.url, HUBFLOW_SWEEP_INTERVAL_MS: '100', HUBFLOW_SCHEDULER_TICK_MS: '50' });
    worker = startWorker(rt);
    await waitForRun(rt, (await rt.engine.triggerRun('failing-sync')).id);
    scheduler = startScheduler(rt);
    const breaches = () => hook!.alerts.filter((a) => a.kind === 'slo_breach');
    for (let i = 0; i < 100 && !breaches().length; i++) await new Promise((r) => setTimeout(r, 50));
    // Ten more sweeps see the same breach.
    await new Promise((r) => setTimeout(r, 1_000));
    expect(breaches().map((a) => [a.dagId, a.details.slo])).toEqual([['failing-sync', 'success_rate']]);
  });
});
