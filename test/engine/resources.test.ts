import { describe, expect, it } from 'vitest';
import { durationMs, formatDuration, formatSeconds, parseDurationParts } from '../../server/engine/duration.ts';
import { defineResource, blackoutAt, freeFrom, nextBlackoutStart, type ResourceSettings } from '../../server/engine/resources.ts';
import { ResourceHandles } from '../../server/engine/resource-handles.ts';
import { defineDag, task } from '../../server/engine/dag.ts';
import { expectTypeOf } from 'vitest';

const payroll = defineResource({
  id: 'payroll-db',
  blackouts: [{ reason: 'payroll batch', cron: '30 1 * * *', timezone: 'Europe/London', duration: '2h' }],
});

describe('recurring blackouts', () => {
  it('hold the resource from the local start for the duration', () => {
    // 25 June: BST, so 01:30 London is 00:30Z.
    expect(blackoutAt([payroll], new Date('2026-06-25T00:29:59Z'))).toBeNull();
    expect(blackoutAt([payroll], new Date('2026-06-25T00:30:00Z'))).toMatchObject({ resource: 'payroll-db', reason: 'payroll batch' });
    expect(blackoutAt([payroll], new Date('2026-06-25T02:29:59Z'))?.end).toEqual(new Date('2026-06-25T02:30:00Z'));
    expect(blackoutAt([payroll], new Date('2026-06-25T02:30:00Z'))).toBeNull();
  });

  it('open and close at the right local times across both DST changes', () => {
    // Spring forward (29 March): 01:30 does not exist; the window opens at 02:30 BST (01:30Z) and lasts 2h.
    expect(blackoutAt([payroll], new Date('2026-03-29T01:00:00Z'))).toBeNull();
    expect(blackoutAt([payroll], new Date('2026-03-29T01:30:00Z'))?.end).toEqual(new Date('2026-03-29T03:30:00Z'));
    // The day before (GMT) and after (BST).
    expect(blackoutAt([payroll], new Date('2026-03-28T01:30:00Z'))?.end).toEqual(new Date('2026-03-28T03:30:00Z'));
    expect(blackoutAt([payroll], new Date('2026-03-30T00:30:00Z'))?.end).toEqual(new Date('2026-03-30T02:30:00Z'));
    // Fall back (25 October): 01:30 happens twice; the window opens at the second (GMT, 01:30Z).
    expect(blackoutAt([payroll], new Date('2026-10-25T00:45:00Z'))).toBeNull();
    expect(blackoutAt([payroll], new Date('2026-10-25T01:30:00Z'))?.end).toEqual(new Date('2026-10-25T03:30:00Z'));
  });

  it('find the last business day of the month for a month-end close', () => {
    const ledger = defineResource({
      id: 'ledger',
      blackouts: [{ reason: 'month-end close', lastBusinessDay: '18:00', timezone: 'America/New_York', duration: '6h' }],
    });
    // January 2026 ends on a Saturday: the close is Friday the 30th, 18:00 EST = 23:00Z.
    expect(blackoutAt([ledger], new Date('2026-01-30T22:59:00Z'))).toBeNull();
    expect(blackoutAt([ledger], new Date('2026-01-30T23:00:00Z'))?.end).toEqual(new Date('2026-01-31T05:00:00Z'));
    expect(blackoutAt([ledger], new Date('2026-01-31T23:00:00Z'))).toBeNull();
    // March 2026 ends on a Tuesday (EDT): 22:00Z.
    expect(blackoutAt([ledger], new Date('2026-03-31T22:00:00Z'))).not.toBeNull();
  });
});

describe('one-off blackouts and chaining', () => {
  const warehouse = defineResource({
    id: 'warehouse',
    blackouts: [
      { reason: 'maintenance', from: '2026-12-24T18:00:00Z', to: '2026-12-25T06:00:00Z' },
      { reason: 'vacuum', cron: '0 6 * * *', timezone: 'UTC', duration: '30m' },
    ],
  });

  it('frees a task only when no window of any resource it uses is open', () => {
    // 18:00 maintenance runs into the 06:00 vacuum: free at 06:30.
    expect(freeFrom([warehouse, payroll], new Date('2026-12-24T20:00:00Z'))).toMatchObject({
      at: new Date('2026-12-25T06:30:00Z'),
      held: { resource: 'warehouse', reason: 'vacuum' },
    });
    expect(freeFrom([warehouse], new Date('2026-12-24T17:00:00Z'))).toEqual({ at: new Date('2026-12-24T17:00:00Z'), held: null });
  });

  it('knows when the next window begins', () => {
    expect(nextBlackoutStart([warehouse], new Date('2026-12-24T12:00:00Z'))?.start).toEqual(new Date('2026-12-24T18:00:00Z'));
  });
});

describe('bad resources', () => {
  it.each([
    [{ id: 'x', blackouts: [{ reason: 'r', cron: '61 1 * * *', timezone: 'UTC', duration: '1h' }] }, "resource 'x': blackouts[0].cron:"],
    [
      { id: 'x', blackouts: [{ reason: 'r', cron: '0 1 * * *', timezone: 'Europe/Londn', duration: '1h' }] },
      "resource 'x': blackouts[0].timezone: unknown time zone 'Europe/Londn'",
    ],
    [{ id: 'x', blackouts: [{ reason: 'r', cron: '0 1 * * *', duration: '1h' }] }, "resource 'x': blackouts[0].timezone: required"],
    [{ id: 'x', blackouts: [{ reason: 'r', cron: '0 1 * * *', timezone: 'UTC', duration: 'two hours' }] }, "resource 'x': blackouts[0].duration:"],
    [{ id: 'x', blackouts: [{ reason: 'r', from: '2026-12-24 18:00', to: '2026-12-25T06:00:00Z' }] }, "resource 'x': blackouts[0].from:"],
    [{ id: 'x', slots: 0 }, "resource 'x': slots: a pool needs at least 1 slot"],
    [{ id: 'x', slot: 2 }, "resource 'x': slot: unknown option"],
    [
      { id: 'x', deferJitterMs: 5_000 },
      "resource 'x': deferJitterMs: unknown option: durations are written one way now; use deferJitter, a duration such as '1m'",
    ],
  ])('%j is refused', (options, message) => {
    expect(() => defineResource(options as never)).toThrow(message);
  });

  it('parses durations in one compact form, and refuses every other spelling with the reason', () => {
    expect(['2h', '90m', '1h30m', '45s', '250ms', '1d12h', '2w', '0s'].map((d) => durationMs(d))).toEqual([
      7_200_000, 5_400_000, 5_400_000, 45_000, 250, 129_600_000, 1_209_600_000, 0,
    ]);
    expect(durationMs(5000)).toBe("expected a duration such as '30s', '2m', '1h30m', '1d12h' or '250ms', got the number 5000");
    for (const bad of ['x', '', 'PT6H', '1.5h', '30m1h', '2 h', '1h1h']) expect(durationMs(bad)).toMatch(/is not a duration such as/);
    expect(durationMs('1mo')).toBe("'1mo': months and years have no fixed length; use days (d) or weeks (w)");
    expect(parseDurationParts('1mo18d17h')).toMatchObject({ months: 1, days: 18, hours: 17, minutes: 0 });
    expect([5_400_000, 250, 129_600_000, 0].map(formatDuration)).toEqual(['1h30m', '250ms', '1d12h', '0s']);
    // A measured latency: milliseconds only while they still matter.
    expect([65_309.973, 1.25, 59.9994].map(formatSeconds)).toEqual(['18h8m30s', '1s250ms', '59s999ms']);
  });

  it('names the resource field whose duration is wrong', () => {
    const blackout = { reason: 'r', cron: '0 1 * * *', timezone: 'UTC' };
    expect(() => defineResource({ id: 'x', blackouts: [{ ...blackout, duration: 3_600_000 as never }] })).toThrow(
      "resource 'x': blackouts[0].duration: expected a duration such as",
    );
    expect(() => defineResource({ id: 'x', deferJitter: '2 min' })).toThrow("resource 'x': deferJitter: '2 min' is not a duration such as");
    expect(defineResource({ id: 'x', deferJitter: '300ms' }).deferJitterMs).toBe(300);
  });
});

describe('resource handles', () => {
  it('open once per process with only the settings the resource names, reach tasks typed, and close at shutdown', async () => {
    const seen: unknown[] = [];
    const closed: string[] = [];
    const db = defineResource({
      id: 'db',
      settings: ['HUBFLOW_HUB_URL', 'HUBFLOW_DATABASE_URL'],
      open: async (s) => {
        seen.push(s);
        return { url: s.HUBFLOW_HUB_URL ?? s.HUBFLOW_DATABASE_URL };
      },
      close: (h) => {
        closed.push(h.url);
      },
    });
    const t = task({
      uses: { db },
      run: (ctx) => {
        expectTypeOf(ctx.resources.db).toEqualTypeOf<{ url: string }>();
        return ctx.resources.db.url;
      },
    });
    expect(defineDag({ id: 'd', tasks: { t } }).tasks.get('t')).toMatchObject({ uses: ['db'], handles: [['db', 'db']] });
    const settings = { HUBFLOW_DATABASE_URL: 'postgres://meta', SNOWFLAKE_PASSWORD: 'secret' } as unknown as ResourceSettings;
    const handles = new ResourceHandles(settings);
    const [a, b] = await Promise.all([handles.named([['db', db]]), handles.named([['x', db]])]);
    expect(a).toEqual({ db: { url: 'postgres://meta' } });
    expect(b.x).toBe(a.db);
    expect(seen).toEqual([{ HUBFLOW_HUB_URL: undefined, HUBFLOW_DATABASE_URL: 'postgres://meta' }]);
    await handles.close();
    expect(closed).toEqual(['postgres://meta']);
  });

  it('try a failed open again on the next use', async () => {
    let tries = 0;
    const flaky = defineResource({
      id: 'flaky',
      open: () => {
        if (++tries === 1) throw new Error('ECONNREFUSED');
        return tries;
      },
    });
    const handles = new ResourceHandles({} as ResourceSettings);
    await expect(handles.handle(flaky)).rejects.toThrow('ECONNREFUSED');
    await expect(handles.handle(flaky)).resolves.toBe(2);
  });
});
