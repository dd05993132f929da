import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { applyScope, ensureSchema, utcDayInterval } from '../../tasks/history/apply.ts';
import { scopeWatermarks } from '../../tasks/history/incremental.ts';
import { STATEMENT_BATCH_SEPARATOR, type Warehouse } from '../../warehouse/contract.ts';
import { entities, extractOne, incrementalHarness, reconcile, runAll, type IncrementalHarness } from './incremental-support.ts';

/*
 * What an hourly load costs the warehouse: on a busy machine each round trip waits in the CPU
 * queue, so a tenant's incremental load sends its statements together where PostgreSQL takes
 * them, and an entity the hub did not change gets no staging table at all.
 */

let h: IncrementalHarness & { staging: string };

beforeAll(async () => {
  h = await incrementalHarness(1, 200);
  await runAll(h, h.incr, { runId: 1, day: '2026-05-01', incremental: false });
}, 120_000);
afterAll(async () => h?.close(), 60_000);

/** The warehouse, with every query it is sent kept in order. */
function counting(inner: Warehouse, sent: string[]): Warehouse {
  return {
    ...inner,
    session: (fn) =>
      inner.session((s) =>
        fn({
          dialect: s.dialect,
          query: (q) => {
            sent.push(q);
            return s.query(q);
          },
          load: (table, columns, file, attempt) => {
            sent.push(`load ${table}`);
            return s.load(table, columns, file, attempt);
          },
        }),
      ),
  };
}

describe('round trips of an incremental load', () => {
  it('loads a tenant with one changed entity in a handful of round trips, and makes no table for the entities it did not change', async () => {
    const tenant = h.tenants[0]!;
    await sql`update ${sql.raw(`${h.hubSchema}.workers`)} set city = 'Trips' where worker_id in (select worker_id from ${sql.raw(`${h.hubSchema}.workers`)} order by worker_id limit 3)`.execute(
      h.hub,
    );
    const marks = await scopeWatermarks(h.incr, entities, [tenant]);
    const extract = await extractOne(h, tenant, 2, marks.get(tenant) ?? null, 'nightly');
    const changed = extract.entities.filter((e) => e.staged > 0).map((e) => e.entity);
    expect(changed).toEqual(['workers']);
    expect(extract.entities.length).toBeGreaterThan(1);

    const sent: string[] = [];
    const wh = counting(h.incr, sent);
    // The history tables are checked once per warehouse and process: not a cost of the load.
    await ensureSchema(wh, entities);
    sent.length = 0;
    const loads = await applyScope({ warehouse: wh, entities, extract, runId: 2, interval: utcDayInterval('2026-05-02'), attempt: 'trips-2' });
    expect(loads.find((l) => l.entity === 'workers')).toMatchObject({ status: 'loaded', updated: 3, inserted: 0, deleted: 0 });
    for (const l of loads.filter((x) => x.entity !== 'workers')) expect(l).toMatchObject({ status: 'loaded', inserted: 0, updated: 0, deleted: 0 });

    const made = sent.flatMap((q) => [...q.matchAll(/create temporary table "(\w+?)_trips_2"/g)].map((m) => m[1]));
    expect(made.sort()).toEqual(['chg_workers', 'stg_workers']);
    // The ledger; both tables; the COPY; the checks; BEGIN with the lock and the ledger; the classification; the writes with COMMIT.
    expect(sent.length).toBeLessThanOrEqual(7);
    expect(sent.at(-1)?.endsWith(`${STATEMENT_BATCH_SEPARATOR}commit`)).toBe(true);

    // The carried figures and the unchanged entities' ledger rows reconcile as before.
    const checks = await reconcile(h.incr, extract, 'trips-2');
    expect(checks.map((c) => [c.entity, c.status])).toEqual(checks.map((c) => [c.entity, 'ok']));
  });
});
