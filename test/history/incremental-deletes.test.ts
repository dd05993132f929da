import { access } from 'node:fs/promises';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { entities, hubRows, incrementalHarness, reconcile, runAll, type IncrementalHarness, type ScopeRun } from './incremental-support.ts';

/*
 * How an incremental run finds deletes: by counts first (the hub's rows in the extract's
 * snapshot against the warehouse's live rows after the changes), the key set compared only when
 * they differ ('every-run'), or never, the difference reported as pending until the nightly full
 * snapshot closes it ('nightly').
 */

let h: IncrementalHarness & { staging: string };
const q = (s: string) => sql.raw(s);

beforeAll(async () => {
  h = await incrementalHarness();
  await runAll(h, h.incr, { runId: 1, day: '2026-04-01', incremental: false });
}, 120_000);
afterAll(async () => h?.close(), 60_000);

const workerLoads = (runs: ScopeRun[]) => runs.flatMap((r) => r.loads).filter((l) => l.entity === 'workers');
const workerChecks = (runs: ScopeRun[]) => runs.flatMap((r) => r.reconciliations).filter((r) => r.entity === 'workers');
const live = async (id: string) =>
  (await sql<{ n: number }>`select count(*)::int as n from ${q(h.incr.table('workers_current'))} where worker_id = ${id}`.execute(h.hub)).rows[0]!.n;
const lastWorker = async (tenant: string) =>
  (
    await sql<{ id: string }>`select worker_id as id from ${q(`${h.hubSchema}.workers`)} where tenant_id = ${tenant} order by worker_id desc limit 1`.execute(
      h.hub,
    )
  ).rows[0]!.id;
const deleteInHub = (id: string) => sql`delete from ${q(`${h.hubSchema}.workers`)} where worker_id = ${id}`.execute(h.hub);

describe('deletes of incremental runs', () => {
  it('compares no key set when the counts say nothing was deleted, and the key set when they do', async () => {
    await sql`update ${q(`${h.hubSchema}.workers`)} set city = 'Counted' where worker_id in (select worker_id from ${q(`${h.hubSchema}.workers`)} order by worker_id limit 4)`.execute(
      h.hub,
    );
    const quiet = await runAll(h, h.incr, { runId: 2, day: '2026-04-02', incremental: true, deletes: 'every-run' });
    expect(workerLoads(quiet).reduce((n, l) => n + l.updated, 0)).toBe(4);
    expect(workerLoads(quiet).map((l) => l.deletes)).toEqual(h.tenants.map(() => ({ counted: 0, keysCompared: false, pending: 0 })));
    expect(workerChecks(quiet).map((r) => r.status)).toEqual(h.tenants.map(() => 'ok'));

    const id = await lastWorker(h.tenants[0]!);
    await deleteInHub(id);
    const one = await runAll(h, h.incr, { runId: 3, day: '2026-04-03', incremental: true, deletes: 'every-run' });
    const mine = workerLoads(one).find((l) => l.deleted)!;
    expect(mine).toMatchObject({ deleted: 1, deletes: { counted: 1, keysCompared: true, pending: 0 } });
    expect(workerLoads(one).filter((l) => l.deletes?.keysCompared)).toHaveLength(1);
    expect(await live(id)).toBe(0);
    expect(workerChecks(one).every((r) => r.status === 'ok')).toBe(true);
  });

  it("with the 'nightly' cadence, leaves a hub delete live and pending until the full snapshot closes it", async () => {
    const id = await lastWorker(h.tenants[1]!);
    await deleteInHub(id);
    const hourly = await runAll(h, h.incr, { runId: 4, day: '2026-04-04', incremental: true, deletes: 'nightly' });
    // No key set is staged at all.
    for (const st of hourly.flatMap((r) => (r.extract.since ? r.extract.entities : []))) expect(st.keys).toBeUndefined();
    expect(await live(id)).toBe(1);
    const pending = workerChecks(hourly).find((r) => r.tenant === h.tenants[1])!;
    expect(pending).toMatchObject({ status: 'ok', severity: 'low', pendingDeletes: 1, missingInSource: 0, missingInTarget: 0 });
    expect(workerChecks(hourly).find((r) => r.tenant === h.tenants[0])).toMatchObject({ status: 'ok', severity: 'none' });
    // Still pending an hour later: the count covers every delete since the last full snapshot.
    const again = await runAll(h, h.incr, { runId: 5, day: '2026-04-05', incremental: true, deletes: 'nightly' });
    expect(workerChecks(again).find((r) => r.tenant === h.tenants[1])?.pendingDeletes).toBe(1);
    expect(workerLoads(again).reduce((n, l) => n + l.deleted, 0)).toBe(0);

    const nightly = await runAll(h, h.incr, { runId: 6, day: '2026-04-06', incremental: false });
    expect(workerLoads(nightly).reduce((n, l) => n + l.deleted, 0)).toBe(1);
    expect(await live(id)).toBe(0);
    expect(workerChecks(nightly).every((r) => r.status === 'ok')).toBe(true);
    const after = await runAll(h, h.incr, { runId: 7, day: '2026-04-07', incremental: true, deletes: 'nightly' });
    expect(workerChecks(after).map((r) => [r.status, r.pendingDeletes])).toEqual(h.tenants.map(() => ['ok', undefined]));
    for (const e of Object.values(entities)) {
      const current = await sql<{ n: number }>`select count(*)::int as n from ${q(h.incr.table(`${e.name}_current`))}`.execute(h.hub);
      expect(current.rows[0]!.n).toBe((await hubRows(h, e)).length);
    }
  });

  it("with the 'nightly' cadence, a warehouse holding fewer rows than the hub is a mismatch, not a pending delete", async () => {
    const tenant = h.tenants[0]!;
    await sql`update ${q(`${h.hubSchema}.workers`)} set city = 'Later' where worker_id = ${await lastWorker(tenant)}`.execute(h.hub);
    const runs = await runAll(h, h.incr, { runId: 8, day: '2026-04-08', incremental: true, deletes: 'nightly' });
    expect(workerChecks(runs).every((r) => r.status === 'ok')).toBe(true);
    const scope = runs.find((r) => r.extract.scope === tenant)!;
    const victims = (
      await sql<{
        id: string;
      }>`select worker_id as id from ${q(h.incr.table('workers_current'))} where tenant_id = ${tenant} and city <> 'Later' order by worker_id limit 2`.execute(
        h.hub,
      )
    ).rows.map((r) => r.id);
    await sql`delete from ${q(h.incr.table('workers_history'))} where is_current and worker_id = ${victims[0]}`.execute(h.hub);
    const lost = (await reconcile(h.incr, scope.extract, 'lost-1')).find((r) => r.entity === 'workers')!;
    expect(lost).toMatchObject({ missingInTarget: 1, severity: 'critical' });
    expect(lost.status).not.toBe('ok');
    expect(lost.pendingDeletes).toBeUndefined();
    // A hub delete and a lost warehouse row cancel out in the counts, not in the carried checksum.
    await deleteInHub(victims[1]!);
    const later = await runAll(h, h.incr, { runId: 9, day: '2026-04-09', incremental: true, deletes: 'nightly' });
    const masked = workerChecks(later).find((r) => r.tenant === tenant)!;
    expect(masked.pendingDeletes).toBeUndefined();
    expect(masked).toMatchObject({ status: 'failed', severity: 'critical' });
  });

  it("stages the key set only for the 'every-run' cadence", async () => {
    const runs = await runAll(h, h.incr, { runId: 10, day: '2026-04-10', incremental: true, deletes: 'every-run' });
    const staged = runs.flatMap((r) => (r.extract.since ? r.extract.entities : []));
    expect(staged.length).toBeGreaterThan(0);
    for (const st of staged) await expect(access(st.keys!.file)).resolves.toBeUndefined();
  });
});
