import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import { manualInterval } from '../../server/engine/runs.ts';
import { Scheduler } from '../../server/engine/scheduler.ts';
import { openRuntime, type Runtime } from '../../server/runtime.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
const others: Runtime[] = [];
afterEach(async () => {
  for (const o of others.splice(0)) await o.close();
  await rt?.close();
  rt = undefined;
});

const noop = task({ run: () => null });

function schedulerAt(runtime: Runtime, iso: string): Scheduler {
  return new Scheduler(runtime.engine, runtime.log, { tickMs: 1_000, sweepMs: 60_000, now: () => new Date(iso) });
}

async function logicalDates(runtime: Runtime, dagId: string): Promise<string[]> {
  const rows = await runtime.db.selectFrom('dag_runs').select('logical_date').where('dag_id', '=', dagId).orderBy('logical_date').execute();
  return rows.map((r) => new Date(r.logical_date).toISOString());
}

describe('catchup', () => {
  it('creates one run per local day across the spring-forward change, in order', async () => {
    const dag = defineDag({
      id: 'london-0130',
      schedule: { cron: '30 1 * * *', timezone: 'Europe/London' },
      startDate: '2026-03-27T00:00:00Z',
      catchup: true,
      tasks: { noop },
    });
    rt = await testRuntime([dag]);
    await schedulerAt(rt, '2026-04-01T00:00:00Z').scheduleDag(dag);
    expect(await logicalDates(rt, dag.id)).toEqual([
      '2026-03-27T01:30:00.000Z', // GMT
      '2026-03-28T01:30:00.000Z',
      '2026-03-29T01:30:00.000Z', // 01:30 does not exist that day: it runs once, an hour later (02:30 BST)
      '2026-03-30T00:30:00.000Z', // BST
    ]);
    // Each run's data interval ends where the next begins; the last is due on 31 March 00:30Z.
    const runs = await rt.db.selectFrom('dag_runs').select(['interval_start', 'interval_end', 'run_type', 'state']).orderBy('logical_date').execute();
    for (let i = 1; i < runs.length; i++) expect(runs[i]!.interval_start).toEqual(runs[i - 1]!.interval_end);
    expect(runs.every((r) => r.run_type === 'scheduled' && r.state === 'queued')).toBe(true);
  });

  it('over a seconds schedule a year behind walks only the ticks it creates: 500 runs a tick, oldest first', async () => {
    const dag = defineDag({
      id: 'every-second',
      schedule: { cron: '* * * * * *', timezone: 'UTC', seconds: true },
      startDate: '2025-06-01T00:00:00Z',
      catchup: true,
      tasks: { noop },
    });
    expect(dag.schedule).toEqual({ cron: '* * * * * *', timezone: 'UTC', seconds: true });
    rt = await testRuntime([dag]);
    const created = await schedulerAt(rt, '2026-06-01T00:00:00Z').scheduleDag(dag);
    expect(created).toHaveLength(500);
    expect([created[0]?.toISOString(), created.at(-1)?.toISOString()]).toEqual(['2025-06-01T00:00:00.000Z', '2025-06-01T00:08:19.000Z']);
  });

  it('runs a fall-back repeated time once, at its second occurrence, and catches up from the last run', async () => {
    const dag = defineDag({
      id: 'london-fall',
      schedule: { cron: '30 1 * * *', timezone: 'Europe/London' },
      startDate: '2026-10-24T00:00:00Z',
      catchup: true,
      tasks: { noop },
    });
    rt = await testRuntime([dag]);
    await schedulerAt(rt, '2026-10-25T12:00:00Z').scheduleDag(dag);
    await schedulerAt(rt, '2026-10-28T00:00:00Z').scheduleDag(dag);
    expect(await logicalDates(rt, dag.id)).toEqual([
      '2026-10-24T00:30:00.000Z',
      '2026-10-25T01:30:00.000Z', // 01:30 happens twice; the run is at the second (GMT) one
      '2026-10-26T01:30:00.000Z',
    ]);
  });

  it('without catchup creates only the latest complete interval', async () => {
    const dag = defineDag({ id: 'hourly', schedule: { cron: '0 * * * *', timezone: 'UTC' }, startDate: '2026-01-01', tasks: { noop } });
    rt = await testRuntime([dag]);
    await schedulerAt(rt, '2026-05-01T10:20:00Z').scheduleDag(dag);
    await schedulerAt(rt, '2026-05-01T10:40:00Z').scheduleDag(dag);
    expect(await logicalDates(rt, dag.id)).toEqual(['2026-05-01T09:00:00.000Z']);
  });

  it('creates nothing for a paused DAG', async () => {
    const dag = defineDag({ id: 'paused', schedule: { cron: '0 * * * *', timezone: 'UTC' }, tasks: { noop } });
    rt = await testRuntime([dag]);
    await rt.db.updateTable('dags').set({ is_paused: true }).where('dag_id', '=', 'paused').execute();
    expect(await schedulerAt(rt, '2026-05-01T10:20:00Z').scheduleDag(dag)).toEqual([]);
  });
});

describe("DST as Airflow's timetable has it", () => {
  async function intervals(runtime: Runtime, dagId: string): Promise<string[][]> {
    const rows = await runtime.db
      .selectFrom('dag_runs')
      .select(['interval_start', 'interval_end'])
      .where('dag_id', '=', dagId)
      .orderBy('logical_date')
      .execute();
    return rows.map((r) => [new Date(r.interval_start).toISOString(), new Date(r.interval_end).toISOString()]);
  }

  it('compares a start date in wall-clock time: a start inside the first pass of the repeated hour skips its second pass', async () => {
    // 2026-10-25T00:45Z is 01:45 BST, after 01:30 on the wall clock, though before 01:30 GMT (01:30Z).
    const spec = { schedule: { cron: '30 1 * * *', timezone: 'Europe/London' }, startDate: '2026-10-25T00:45:00Z', tasks: { noop } };
    const withCatchup = defineDag({ id: 'fold-start-catchup', catchup: true, ...spec });
    const latestOnly = defineDag({ id: 'fold-start-latest', ...spec });
    rt = await testRuntime([withCatchup, latestOnly]);

    await schedulerAt(rt, '2026-10-26T02:00:00Z').scheduleDag(latestOnly);
    expect(await logicalDates(rt, latestOnly.id)).toEqual([]); // [25th 01:30Z, 26th 01:30Z) starts before the DAG does
    await schedulerAt(rt, '2026-10-27T02:00:00Z').scheduleDag(latestOnly);
    expect(await logicalDates(rt, latestOnly.id)).toEqual(['2026-10-26T01:30:00.000Z']);

    await schedulerAt(rt, '2026-10-28T12:00:00Z').scheduleDag(withCatchup);
    expect(await intervals(rt, withCatchup.id)).toEqual([
      ['2026-10-26T01:30:00.000Z', '2026-10-27T01:30:00.000Z'],
      ['2026-10-27T01:30:00.000Z', '2026-10-28T01:30:00.000Z'],
    ]);
  });

  it('runs only the first of several ticks in a spring-forward gap, moved by the gap, with contiguous intervals', async () => {
    const dag = defineDag({
      id: 'gap-quarters',
      schedule: { cron: '*/15 1 * * *', timezone: 'Europe/London' },
      startDate: '2026-03-28T00:00:00Z',
      catchup: true,
      tasks: { noop },
    });
    rt = await testRuntime([dag]);
    await schedulerAt(rt, '2026-03-31T00:00:00Z').scheduleDag(dag);
    const got = await intervals(rt, dag.id);
    expect(got.map(([start]) => start)).toEqual([
      '2026-03-28T01:00:00.000Z',
      '2026-03-28T01:15:00.000Z',
      '2026-03-28T01:30:00.000Z',
      '2026-03-28T01:45:00.000Z',
      '2026-03-29T01:00:00.000Z', // 01:00 runs at 02:00 BST; 01:15-01:45 do not exist and do not run
      '2026-03-30T00:00:00.000Z',
      '2026-03-30T00:15:00.000Z',
      '2026-03-30T00:30:00.000Z',
      '2026-03-30T00:45:00.000Z',
    ]);
    expect(got.every(([, end], i) => i === got.length - 1 || end === got[i + 1]![0])).toBe(true);
  });

  // Airflow airflow-core/tests/unit/timetables/test_interval_timetable.py::test_cron_next_dagrun_info_no_catchup_dst:
  // without catchup the scheduler creates the latest complete interval, never one still under way.
  it('without catchup creates the interval Airflow does around DST changes', async () => {
    const cases = [
      {
        id: 'new-york-dst-gap',
        cron: '0 2 * * *',
        timezone: 'America/New_York',
        now: '2024-03-10T07:30:00Z',
        want: ['2024-03-09T07:00:00.000Z', '2024-03-10T07:00:00.000Z'],
      },
      {
        id: 'new-york-dst-gap-exact',
        cron: '0 2 * * *',
        timezone: 'America/New_York',
        now: '2024-03-10T07:00:00Z',
        want: ['2024-03-09T07:00:00.000Z', '2024-03-10T07:00:00.000Z'],
      },
      {
        id: 'zurich-dst-gap',
        cron: '0 2 * * *',
        timezone: 'Europe/Zurich',
        now: '2023-03-26T01:30:00Z',
        want: ['2023-03-25T01:00:00.000Z', '2023-03-26T01:00:00.000Z'],
      },
      {
        id: 'lord-howe-half-hour-dst-gap',
        cron: '0 2 * * *',
        timezone: 'Australia/Lord_Howe',
        now: '2024-10-05T15:30:00Z',
        want: ['2024-10-04T15:30:00.000Z', '2024-10-05T15:30:00.000Z'],
      },
      {
        id: 'new-york-fold',
        cron: '0 1 * * *',
        timezone: 'America/New_York',
        now: '2024-11-03T05:30:00Z',
        want: ['2024-11-01T05:00:00.000Z', '2024-11-02T05:00:00.000Z'],
      },
    ];
    const dags = cases.map((c) => defineDag({ id: c.id, schedule: { cron: c.cron, timezone: c.timezone }, tasks: { noop } }));
    rt = await testRuntime(dags);
    for (const [i, c] of cases.entries()) {
      await schedulerAt(rt, c.now).scheduleDag(dags[i]!);
      expect(await intervals(rt, c.id), c.id).toEqual([c.want]);
    }
  });
});

describe('several schedulers at once', () => {
  it('create no duplicate runs', async () => {
    const dag = defineDag({
      id: 'busy',
      schedule: { cron: '*/5 * * * *', timezone: 'America/New_York' },
      startDate: '2026-03-07T00:00:00Z',
      catchup: true,
      maxActiveRuns: 1,
      tasks: { noop },
    });
    rt = await testRuntime([dag]);
    // Three processes' worth of schedulers: separate pools on the same store, racing.
    for (let i = 0; i < 2; i++) {
      others.push(await openRuntime({ config: rt.config, dags: rt.dags, log: rt.log }));
    }
    const now = '2026-03-09T00:00:00Z'; // spans the New York spring-forward night
    const created = await Promise.all([rt, ...others].map((r) => schedulerAt(r, now).scheduleDag(dag)));
    const dates = await logicalDates(rt, dag.id);
    expect(dates).toHaveLength(new Set(dates).size);
    expect(created.flat()).toHaveLength(dates.length);
    expect(dates).toHaveLength(500); // the per-tick cap; the next tick continues
    await Promise.all([rt, ...others].map((r) => schedulerAt(r, now).scheduleDag(dag)));
    // 48 real hours of 5-minute ticks: the local hour that does not exist takes no real time.
    const all = await logicalDates(rt, dag.id);
    expect(all).toHaveLength(48 * 12);
    expect(all.slice(1).every((d, i) => Date.parse(d) - Date.parse(all[i]!) === 300_000)).toBe(true);
  });

  it('start queued runs oldest first and never more than maxActiveRuns', async () => {
    const dag = defineDag({
      id: 'one-at-a-time',
      schedule: { cron: '0 * * * *', timezone: 'UTC' },
      startDate: '2026-05-01T00:00:00Z',
      catchup: true,
      maxActiveRuns: 2,
      tasks: { noop },
    });
    rt = await testRuntime([dag]);
    others.push(await openRuntime({ config: rt.config, dags: rt.dags, log: rt.log }));
    await schedulerAt(rt, '2026-05-01T06:00:00Z').scheduleDag(dag);
    await Promise.all([rt.engine.activate(dag.id), others[0]!.engine.activate(dag.id), rt.engine.activate(dag.id)]);
    const running = await rt.db.selectFrom('dag_runs').select('logical_date').where('state', '=', 'running').orderBy('logical_date').execute();
    expect(running.map((r) => new Date(r.logical_date).toISOString())).toEqual(['2026-05-01T00:00:00.000Z', '2026-05-01T01:00:00.000Z']);
  });
});

describe('a run asked for by hand', () => {
  const dag = defineDag({ id: 'nightly', schedule: { cron: '0 2 * * *', timezone: 'Europe/London' }, tasks: { noop } });

  it('at a tick covers the interval the scheduled run would', () => {
    const at = new Date('2026-06-10T01:00:00Z'); // 02:00 BST
    expect(manualInterval(dag, at)).toEqual({ start: at, end: new Date('2026-06-11T01:00:00Z') });
  });

  it('at noon covers the last full day', () => {
    expect(manualInterval(dag, new Date('2026-06-10T11:00:00Z'))).toEqual({
      start: new Date('2026-06-09T01:00:00Z'),
      end: new Date('2026-06-10T01:00:00Z'),
    });
  });
});
