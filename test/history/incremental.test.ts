import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mutateHub } from '../../demo/mutate.ts';
import { applyScope, utcDayInterval } from '../../tasks/history/apply.ts';
import { changedSince } from '../../tasks/history/incremental-extract.ts';
import { scopeWatermarks } from '../../tasks/history/incremental.ts';
import { TEST_DATABASE_URL } from '../support.ts';
import {
  asOf,
  entities,
  extractOne,
  hubRows,
  incrementalHarness,
  loadAndReconcile,
  reconcile,
  runAll,
  type IncrementalHarness,
  type ScopeRun,
} from './incremental-support.ts';

let h: IncrementalHarness & { staging: string };
const workers = entities.workers!;
const q = (s: string) => sql.raw(s);

beforeAll(async () => {
  h = await incrementalHarness();
}, 120_000);
afterAll(async () => h?.close(), 60_000);

const allOk = (runs: ScopeRun[]) =>
  runs.flatMap((r) => r.reconciliations.map((x) => `${x.entity}/${x.tenant}: ${x.status}`)).filter((x) => !x.endsWith(': ok'));
const incrementalOnes = (runs: ScopeRun[]) => runs.filter((r) => r.extract.since);
/** The latest snapshot of a run: as of it, every scope's load of the run is in. */
const cutOf = (runs: ScopeRun[]) =>
  runs
    .map((r) => r.extract.snapshotAt)
    .sort()
    .at(-1)!;
const currentOf = async (id: string) =>
  (await sql<{ city: string }>`select city from ${q(h.incr.table('workers_current'))} where worker_id = ${id}`.execute(h.hub)).rows[0]?.city;

describe('incremental history runs', () => {
  it('after a full snapshot, load only the changes, and give the same history as full snapshots', async () => {
    const first = await runAll(h, h.incr, { runId: 1, day: '2026-03-01', incremental: true });
    // No watermark yet: every scope is extracted whole.
    expect(incrementalOnes(first)).toHaveLength(0);
    const fullFirst = await runAll(h, h.full, { runId: 1, day: '2026-03-01', incremental: false });
    const mutation = await mutateHub(h.hub, h.hubSchema, { seed: 3, rate: 0.05 });
    expect(mutation.deleted + mutation.hired + mutation.updated).toBeGreaterThan(0);

    const second = await runAll(h, h.incr, { runId: 2, day: '2026-03-02', incremental: true });
    const full = await runAll(h, h.full, { runId: 2, day: '2026-03-02', incremental: false });
    expect(incrementalOnes(second)).toHaveLength(h.tenants.length);
    expect(allOk(second)).toEqual([]);
    // Only the changed rows travel (all of the keys, for the deletes).
    const stagedWorkers = (runs: ScopeRun[]) => runs.flatMap((r) => r.extract.entities.filter((e) => e.entity === 'workers')).reduce((n, e) => n + e.staged, 0);
    expect(stagedWorkers(second)).toBeLessThan(stagedWorkers(full) / 5);
    const sum = (runs: ScopeRun[], k: 'inserted' | 'updated' | 'deleted') => runs.flatMap((r) => r.loads).reduce((n, l) => n + l[k], 0);
    for (const k of ['inserted', 'updated', 'deleted'] as const) expect(sum(second, k)).toBe(sum(full, k));
    // As of each run's snapshot, both histories are the hub as it stood (it has not changed since).
    for (const e of Object.values(entities)) {
      const hub = await hubRows(h, e);
      expect(await asOf(h, h.incr, e, cutOf(second))).toEqual(hub);
      expect(await asOf(h, h.full, e, cutOf(full))).toEqual(hub);
    }
    // As of each tenant's first snapshot, both hold the seed: the changes start after it.
    for (const tenant of h.tenants) {
      const cut = (runs: ScopeRun[]) => runs.find((r) => r.extract.scope === tenant)!.extract.snapshotAt;
      const mine = (rows: string[]) => rows.filter((r) => r.startsWith(`${tenant}|`));
      expect(mine(await asOf(h, h.incr, workers, cut(first)))).toEqual(mine(await asOf(h, h.full, workers, cut(fullFirst))));
    }
  });

  it('bounds the changed rows by age() only while the watermark is less than 2^30 transactions back', () => {
    expect(changedSince('100:105:', '200:210:')).toBe("age(t.xmin) between 0 and age('100'::xid)");
    // The watermark's 64-bit id in a later epoch: its low 32 bits, as the tuples hold them.
    expect(changedSince('4294967396:4294967400:', '4294967500:4294967510:')).toBe("age(t.xmin) between 0 and age('100'::xid)");
    // The hub's ids went backwards (restored from a backup), or too many passed: the scope is extracted whole.
    expect(changedSince('300:300:', '200:210:')).toBeNull();
    expect(changedSince('100:100:', `${2 ** 30 + 100}:${2 ** 30 + 100}:`)).toBeNull();
    expect(() => changedSince('yesterday', '200:210:')).toThrow(/not a PostgreSQL snapshot/);
  });

  it('catches a row that a transaction open across the cut commits afterwards, even under a savepoint', async () => {
    const tenant = h.tenants[0]!;
    const [a, b] = (
      await sql<{ id: string }>`select worker_id as id from ${q(`${h.hubSchema}.workers`)} where tenant_id = ${tenant} order by worker_id limit 2`.execute(
        h.hub,
      )
    ).rows.map((r) => r.id);
    const late = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await late.connect();
    try {
      await late.query('begin');
      // updated_at is the transaction's start: before the cut, as a bare `updated_at > last cut` would miss.
      await late.query(`update ${h.hubSchema}.workers set city = 'Late', updated_at = now() where tenant_id = $1 and worker_id = $2`, [tenant, a]);
      await late.query('savepoint s1');
      await late.query(`update ${h.hubSchema}.workers set city = 'Savepoint', updated_at = now() where tenant_id = $1 and worker_id = $2`, [tenant, b]);
      await late.query('release savepoint s1');
      const during = await runAll(h, h.incr, { runId: 3, day: '2026-03-03', incremental: true });
      expect(allOk(during)).toEqual([]);
      expect(await currentOf(a!)).not.toBe('Late');
      await late.query('commit');
      const cut = during[1]!.extract.snapshotAt;
      const stamped = await sql<{
        before: boolean;
      }>`select bool_and(updated_at < ${cut}::timestamptz) as before from ${q(`${h.hubSchema}.workers`)} where city in ('Late', 'Savepoint')`.execute(h.hub);
      expect(stamped.rows[0]!.before).toBe(true);
    } finally {
      await late.end();
    }
    const after = await runAll(h, h.incr, { runId: 4, day: '2026-03-04', incremental: true });
    expect(allOk(after)).toEqual([]);
    expect(await currentOf(a!)).toBe('Late');
    expect(await currentOf(b!)).toBe('Savepoint');
  });

  it('detects a delete by the key set, and a key that comes back as a resurrection', async () => {
    const tenant = h.tenants[1]!;
    const id = (
      await sql<{ id: string }>`select worker_id as id from ${q(`${h.hubSchema}.workers`)} where tenant_id = ${tenant} order by worker_id desc limit 1`.execute(
        h.hub,
      )
    ).rows[0]!.id;
    await sql`create table ${q(`${h.hubSchema}.kept_worker`)} as select * from ${q(`${h.hubSchema}.workers`)} where worker_id = ${id}`.execute(h.hub);
    await sql`delete from ${q(`${h.hubSchema}.workers`)} where worker_id = ${id}`.execute(h.hub);
    const gone = await runAll(h, h.incr, { runId: 5, day: '2026-03-05', incremental: true });
    expect(allOk(gone)).toEqual([]);
    expect(gone.flatMap((r) => r.loads).find((l) => l.entity === 'workers' && l.deleted)?.deleted).toBe(1);
    expect(await currentOf(id)).toBeUndefined();
    await sql`insert into ${q(`${h.hubSchema}.workers`)} select * from ${q(`${h.hubSchema}.kept_worker`)}`.execute(h.hub);
    const back = await runAll(h, h.incr, { runId: 6, day: '2026-03-06', incremental: true });
    expect(allOk(back)).toEqual([]);
    expect(back.flatMap((r) => r.loads).reduce((n, l) => n + l.resurrected, 0)).toBe(1);
    const changes = await sql<{
      t: string;
    }>`select change_type as t from ${q(h.incr.table('workers_changes'))} where worker_id = ${id} order by valid_from`.execute(h.hub);
    expect(changes.rows.map((r) => r.t)).toEqual(['insert', 'delete', 'resurrect']);
    for (const e of Object.values(entities)) expect(await asOf(h, h.incr, e, cutOf(back))).toEqual(await hubRows(h, e));
  });

  it('reconciles the whole scope, and finds a current row lost or altered in the warehouse', async () => {
    await sql`update ${q(`${h.hubSchema}.workers`)} set city = 'Moved' where worker_id in (select worker_id from ${q(`${h.hubSchema}.workers`)} order by worker_id limit 3)`.execute(
      h.hub,
    );
    const runs = await runAll(h, h.incr, { runId: 7, day: '2026-03-07', incremental: true });
    expect(allOk(runs)).toEqual([]);
    const scope = runs.find((r) => r.extract.scope === h.tenants[0])!;
    const tenant = h.tenants[0]!;
    // A record the hub did not change: only the whole-scope figures can see it.
    const victim = (
      await sql<{
        id: string;
      }>`select worker_id as id from ${q(h.incr.table('workers_current'))} where tenant_id = ${tenant} and city <> 'Moved' order by worker_id desc limit 2`.execute(
        h.hub,
      )
    ).rows.map((r) => r.id);
    await sql`update ${q(h.incr.table('workers_history'))} set row_hash = repeat('0', 64) where is_current and worker_id = ${victim[0]}`.execute(h.hub);
    const altered = (await reconcile(h.incr, scope.extract, 'planted-1')).find((r) => r.entity === 'workers')!;
    expect(altered.status).toBe('failed');
    expect(altered.currentSum).not.toBe(altered.sourceSum);
    await sql`delete from ${q(h.incr.table('workers_history'))} where is_current and worker_id = ${victim[1]}`.execute(h.hub);
    const lost = (await reconcile(h.incr, scope.extract, 'planted-2')).find((r) => r.entity === 'workers')!;
    expect(lost.missingInTarget).toBe(1);
    expect(lost.samples.missingInTarget).toEqual([victim[1]]);
    expect(lost.severity).toBe('critical');
  });

  it('retries a load that failed midway, and applies a snapshot once however often it is loaded', async () => {
    // The planted damage goes with a full snapshot, which also leaves a fresh watermark.
    await runAll(h, h.incr, { runId: 8, day: '2026-03-08', incremental: false });
    const tenant = h.tenants[0]!;
    await sql`update ${q(`${h.hubSchema}.workers`)} set city = 'Retried' where tenant_id = ${tenant} and worker_id in (select worker_id from ${q(`${h.hubSchema}.workers`)} where tenant_id = ${tenant} order by worker_id limit 2)`.execute(
      h.hub,
    );
    const marks = await scopeWatermarks(h.incr, entities, [tenant]);
    const extract = await extractOne(h, tenant, 9, marks.get(tenant) ?? null);
    const versions = async () => (await sql<{ n: number }>`select count(*)::int as n from ${q(h.incr.table('workers_history'))}`.execute(h.hub)).rows[0]!.n;
    const before = await versions();
    // A key set the warehouse does not load whole (as a crash mid-COPY would leave it) applies nothing;
    // the hub's count says one more key too, so the counts differ and the key set is loaded.
    const short = {
      ...extract,
      entities: extract.entities.map((e) => (e.keys ? { ...e, keys: { ...e.keys, count: e.keys.count + 1 }, hubCount: e.hubCount! + 1 } : e)),
    };
    const interval = utcDayInterval('2026-03-09');
    await expect(applyScope({ warehouse: h.incr, entities, extract: short, runId: 9, interval, attempt: 'crash-1' })).rejects.toThrow(
      /keys; nothing was applied/,
    );
    expect(await versions()).toBe(before);
    const retried = await loadAndReconcile(h.incr, extract, { runId: 9, day: '2026-03-09' });
    expect(retried.loads.find((l) => l.entity === 'workers')).toMatchObject({ status: 'loaded', updated: 2 });
    expect(retried.reconciliations.every((r) => r.status === 'ok')).toBe(true);
    const again = await applyScope({ warehouse: h.incr, entities, extract, runId: 9, interval, attempt: 'crash-3' });
    expect(again.every((l) => l.status === 'already_loaded')).toBe(true);
    expect(await versions()).toBe(before + 2);
    // An extract from the same watermark again (the first one's ledger row lost with a crash) changes nothing more.
    const rerun = await extractOne(h, tenant, 10, marks.get(tenant) ?? null);
    const second = await loadAndReconcile(h.incr, rerun, { runId: 10, day: '2026-03-09' });
    expect(second.loads.every((l) => l.inserted + l.updated + l.deleted + l.resurrected === 0)).toBe(true);
    expect(await versions()).toBe(before + 2);
  });
});
