import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import type { Escalation } from '../../server/engine/escalation.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { checkSla, deadlineFor, dueAt, startJitterMs, windowFor } from '../../server/engine/sla.ts';
import { startWorker } from '../../server/processes.ts';
import { openRuntime, type Runtime } from '../../server/runtime.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const noop = task({ run: () => null });
const london = { cron: '0 2 * * *', timezone: 'Europe/London' };

describe('start windows', () => {
  const dag = defineDag({ id: 'nightly', schedule: london, window: { start: '00:30', end: '06:00' }, tasks: { noop } });

  it('are local times, DST included', () => {
    expect(windowFor(dag, new Date('2026-01-15T01:00:00Z'))).toEqual({ start: new Date('2026-01-15T00:30:00Z'), end: new Date('2026-01-15T06:00:00Z') });
    expect(windowFor(dag, new Date('2026-07-15T01:00:00Z'))).toEqual({ start: new Date('2026-07-14T23:30:00Z'), end: new Date('2026-07-15T05:00:00Z') });
  });

  it('hold back a run that is due before the window opens', () => {
    const early = defineDag({ id: 'early', schedule: { cron: '0 23 * * *', timezone: 'UTC' }, window: { start: '00:30', end: '06:00' }, tasks: { noop } });
    expect(dueAt(early, new Date('2026-01-14T23:00:00Z'), new Date('2026-01-15T23:00:00Z'))).toEqual(new Date('2026-01-16T00:30:00Z'));
  });

  it('may cross midnight', () => {
    const late = defineDag({ id: 'late', schedule: { cron: '0 22 * * *', timezone: 'UTC' }, window: { start: '22:00', end: '04:00' }, tasks: { noop } });
    expect(windowFor(late, new Date('2026-01-16T01:00:00Z'))).toEqual({ start: new Date('2026-01-15T22:00:00Z'), end: new Date('2026-01-16T04:00:00Z') });
  });
});

describe('deadlines and start jitter', () => {
  it('count a deadline in local calendar terms from the logical date', () => {
    const filing = defineDag({ id: 'filing', schedule: { cron: '0 0 1 * *', timezone: 'Europe/London' }, deadline: '1mo18d17h', tasks: { noop } });
    // The March return (logical date 1 March) is due on 19 April at 17:00 BST.
    expect(deadlineFor(filing, new Date('2026-03-01T00:00:00Z'))).toEqual(new Date('2026-04-19T16:00:00Z'));
  });

  it('spread runs deterministically within the jitter', () => {
    const spread = defineDag({ id: 'spread', schedule: { ...london, jitter: '5m' }, tasks: { noop } });
    const dates = Array.from({ length: 50 }, (_, i) => new Date(Date.UTC(2026, 0, 1 + i, 2)));
    const jitters = dates.map((d) => startJitterMs(spread, d));
    expect(jitters.every((j) => j >= 0 && j <= 300_000)).toBe(true);
    expect(new Set(jitters).size).toBeGreaterThan(40);
    expect(dates.map((d) => startJitterMs(spread, d))).toEqual(jitters);
  });
});

let rt: TestRuntime | undefined;
let other: Runtime | undefined;
let worker: Executor | undefined;
afterEach(async () => {
  await worker?.close();
  await other?.close();
  await rt?.close();
  rt = other = worker = undefined;
});

describe('an SLA alert', () => {
  it('fires exactly once for a run that misses its deadline, with two schedulers looking', async () => {
    const dag = defineDag({
      id: 'due-soon',
      owner: 'payroll-data',
      schedule: { cron: '* * * * *', timezone: 'UTC' },
      deadline: '1s',
      tasks: { slow: task({ run: () => new Promise((r) => setTimeout(r, 1_500)) }) },
    });
    rt = await testRuntime([dag]);
    other = await openRuntime({ config: rt.config, dags: rt.dags, log: rt.log });
    const alerts: Escalation[] = [];
    for (const r of [rt, other]) Object.defineProperty(r.engine, 'escalate', { value: async (e: Escalation) => void alerts.push(e) });
    worker = startWorker(rt);

    const logicalDate = new Date(Math.floor(Date.now() / 60_000) * 60_000);
    const run = (await rt.engine.createRun(dag, {
      logicalDate,
      intervalStart: logicalDate,
      intervalEnd: new Date(logicalDate.getTime() + 60_000),
      runType: 'scheduled',
      dueAt: new Date(),
    }))!;
    await rt.engine.activate(dag.id);
    // The deadline (logical date + 1 s) passes while the run is still going.
    await new Promise((r) => setTimeout(r, Math.max(0, logicalDate.getTime() + 1_100 - Date.now())));
    const [a, b] = await Promise.all([checkSla(rt.engine), checkSla(other.engine)]);
    expect([...a, ...b]).toEqual([run.id]);
    await waitForRun(rt, run.id);
    expect(await checkSla(rt.engine)).toEqual([]);

    expect(alerts).toEqual([
      expect.objectContaining({
        kind: 'sla_miss',
        dagId: 'due-soon',
        runId: run.id,
        owner: 'payroll-data',
        message: expect.stringContaining('not finished by its deadline'),
      }),
    ]);
    const row = await rt.db.selectFrom('dag_runs').select(['sla_alerted_at', 'sla_reason']).where('id', '=', run.id).executeTakeFirstOrThrow();
    expect(row.sla_alerted_at).not.toBeNull();
    expect(row.sla_reason).toContain('deadline');
  });

  it('fires when a run is still queued as its start window closes', async () => {
    const dag = defineDag({
      id: 'windowed',
      schedule: { cron: '0 2 * * *', timezone: 'UTC' },
      window: { start: '00:30', end: '06:00' },
      maxActiveRuns: 1,
      tasks: { noop },
    });
    rt = await testRuntime([dag]);
    const alerts: Escalation[] = [];
    Object.defineProperty(rt.engine, 'escalate', { value: async (e: Escalation) => void alerts.push(e) });
    const logicalDate = new Date('2026-06-01T02:00:00Z');
    const run = (await rt.engine.createRun(dag, {
      logicalDate,
      intervalStart: logicalDate,
      intervalEnd: new Date('2026-06-02T02:00:00Z'),
      runType: 'scheduled',
      dueAt: new Date('2026-06-02T02:00:00Z'),
    }))!;
    expect(await checkSla(rt.engine, new Date('2026-06-02T05:59:00Z'))).toEqual([]);
    expect(await checkSla(rt.engine, new Date('2026-06-02T06:01:00Z'))).toEqual([run.id]);
    expect(await checkSla(rt.engine, new Date('2026-06-02T07:00:00Z'))).toEqual([]);
    expect(alerts.map((a) => a.message)).toEqual([
      'SLA: run for 2026-06-01T02:00:00.000Z not started by the end of its start window (2026-06-02T06:00:00.000Z)',
    ]);
  });
});
