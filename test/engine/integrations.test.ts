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

describe('an error budget burning fast', () => {
  it('alerts while the success rate over the window still meets its SLO', async () => {
    hook = await alertWebhook();
    const dag = defineDag({
      id: 'steady-sync',
      integration: { ...integration, slo: { successRate: 0.99 } },
      tasks: { load: task({ retry: { attempts: 1 }, run: () => Promise.reject(new Error('warehouse down')) }) },
    });
    rt = await testRuntime([dag], { HUBFLOW_ALERT_WEBHOOK: hook.url });
    // 300 good runs over the past week, as the store records them.
    const day = (i: number) => new Date(Date.now() - (i + 2) * 1_800_000);
    await rt.db
      .insertInto('dag_runs')
      .values(
        Array.from({ length: 300 }, (_, i) => ({
          dag_id: dag.id,
          logical_date: day(i),
          interval_start: day(i),
          interval_end: day(i),
          due_at: day(i),
          run_type: 'manual' as const,
          state: 'success' as const,
          conf: '{}',
          started_at: day(i),
          ended_at: day(i),
        })),
      )
      .execute();
    worker = startWorker(rt);
    for (let i = 0; i < 2; i++) await waitForRun(rt, (await rt.engine.triggerRun(dag.id)).id);

    const check = await checkIntegrations(rt.engine);
    expect(check.statuses[0]!.sli).toMatchObject({ finishedRuns: 302, successRate: 300 / 302 });
    expect(check.statuses[0]!.sli.burnRate1h).toBeCloseTo(100);
    expect(check.alerted).toEqual(['steady-sync/error_budget_burn']);
    expect(hook.alerts.find((a) => a.kind === 'slo_breach')?.message).toContain(
      '2 of 2 runs failed in the last hour, burning the error budget 100.0x; alert at 14.4x',
    );
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
