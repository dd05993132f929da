import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer as createHubflowServer } from '../../server/http/server.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { taskStates } from '../support.ts';
import { asOf, historyHarness, hubState, runNight, type HistoryHarness } from './support.ts';

/**
 * The record contract on a hub with ordinary imperfections: every hub row ends loaded or
 * rejected with its entity, key, tenant, field and rule; a rejected worker that was loaded
 * before stays as it was (unknown today, never deleted); reconciliation counts it as rejected.
 *
 * Two tenants: the large one gets one bad worker (below the 0.1% line), the small one several
 * (above it: its reconcile fails, and says why).
 */

let h: HistoryHarness;
let big: string;
let small: string;
let day1Run: number;
let day2Run: number;
/** The hub's workers before the corruption: what a rejected key must keep. */
let day1Workers: string[];
const workers = HUB_ENTITIES.workers!;

const hubTable = (t: string) => sql.raw(`${h.hubSchema}.${t}`);
const wh = (t: string) => sql.raw(`${h.whSchema}.${t}`);

async function firstWorkers(tenant: string, n: number): Promise<string[]> {
  const { rows } = await sql<{
    id: string;
  }>`select worker_id as id from ${hubTable('workers')} where tenant_id = ${tenant} order by worker_id limit ${n}`.execute(h.rt.connections.hub());
  return rows.map((r) => r.id);
}

/** The planted faults, by worker: what the extract must report for each. */
const planted: { tenant: () => string | null; key: string; field: string; rule: string }[] = [];

beforeAll(async () => {
  h = await historyHarness({ tenants: 2, workers: 2600, seed: 21 });
  const counts = (
    await sql<{ t: string; n: string }>`select tenant_id as t, count(*) as n from ${hubTable('workers')} group by 1 order by 2 desc`.execute(h.rt.db)
  ).rows;
  [big, small] = counts.map((c) => c.t) as [string, string];
  expect(Number(counts[0]!.n)).toBeGreaterThan(1000);
  const day1 = await runNight(h, '2026-04-01');
  expect(day1.state, JSON.stringify(await taskStates(h.rt, day1.id))).toBe('success');
  day1Run = day1.id;
  day1Workers = await hubState(h, workers);

  const hub = h.rt.connections.hub();
  // A hub looser than the contract: dates held as text, a required name nullable, and no
  // primary key, so a row can have no tenant.
  await sql`alter table ${hubTable('workers')} alter column birth_date type text, alter column family_name drop not null, drop constraint workers_pkey`.execute(
    hub,
  );
  await sql`alter table ${hubTable('workers')} alter column tenant_id drop not null`.execute(hub);
  const [b1] = await firstWorkers(big, 1);
  const [s1, s2, s3, s4, s5, s6] = await firstWorkers(small, 6);
  const set = (id: string, assignment: string) =>
    sql`update ${hubTable('workers')} set ${sql.raw(assignment)}, updated_at = now() where worker_id = ${id}`.execute(hub);
  await set(b1!, `status = 'retired'`);
  await set(s1!, `birth_date = '1990-02-30'`);
  await set(s2!, `family_name = null`);
  await set(s3!, `country = 'GBR'`);
  await set(s4!, `gender = 'X'`);
  // Rows of no tenant, and of a tenant id that would name a parent folder.
  await sql`update ${hubTable('workers')} set tenant_id = null where worker_id = ${s5!}`.execute(hub);
  await sql`update ${hubTable('workers')} set tenant_id = '..' where worker_id = ${s6!}`.execute(hub);
  planted.push(
    { tenant: () => big, key: b1!, field: 'status', rule: 'enum' },
    { tenant: () => small, key: s1!, field: 'birth_date', rule: 'type' },
    { tenant: () => small, key: s2!, field: 'family_name', rule: 'not_null' },
    { tenant: () => small, key: s3!, field: 'country', rule: 'max_length' },
    { tenant: () => small, key: s4!, field: 'gender', rule: 'enum' },
    { tenant: () => null, key: s5!, field: 'tenant_id', rule: 'tenant' },
    { tenant: () => '..', key: s6!, field: 'tenant_id', rule: 'tenant' },
  );
  day2Run = (await runNight(h, '2026-04-02')).id;
}, 180_000);

afterAll(async () => {
  await h?.close();
});

describe('the record contract at extract', () => {
  it('finds nothing to reject in the demo hub as generated', async () => {
    expect(await h.rt.db.selectFrom('rejects').select(['entity', 'field', 'reason']).where('run_id', '=', day1Run).execute()).toEqual([]);
  });

  it('rejects each bad row once, with entity, key, tenant, field and rule, and keeps its raw row', async () => {
    const rejects = await h.rt.db
      .selectFrom('rejects')
      .select(['entity', 'tenant_id', 'record_key', 'field', 'rule', 'reason', 'raw'])
      .where('run_id', '=', day2Run)
      .where('kind', '=', 'extract')
      .orderBy('record_key')
      .execute();
    expect(rejects.map((r) => ({ entity: r.entity, tenant: r.tenant_id, key: r.record_key, field: r.field, rule: r.rule }))).toEqual(
      planted.map((p) => ({ entity: 'workers', tenant: p.tenant(), key: p.key, field: p.field, rule: p.rule })).sort((a, b) => a.key.localeCompare(b.key)),
    );
    const reason = (key: string) => rejects.find((r) => r.record_key === key)!;
    // Personal values are masked in the reason, and kept whole in the raw row.
    expect(reason(planted[1]!.key).reason).toBe("birth_date: '19•••••••0' is not a valid date");
    expect(reason(planted[1]!.key).raw).toContain('1990-02-30');
    expect(reason(planted[4]!.key).reason).toBe("gender: '•' is not one of F, M");
    expect(reason(planted[0]!.key).reason).toBe("status: 'retired' is not one of active, on_leave, terminated");
    expect(reason(planted[3]!.key).reason).toBe("country: '•••' has 3 characters, more than the 2 allowed");
    expect(reason(planted[2]!.key).reason).toBe('family_name: missing (null), the contract requires a value');
    expect(reason(planted[5]!.key).reason).toBe('tenant_id: tenant id is missing (null)');
    expect(reason(planted[6]!.key).reason).toMatch(/^tenant_id: tenant id "\.\." is not 1-64 characters/);
  });

  it('loads every other row, and accounts for every hub row: extracted = staged + rejected per tenant and entity', async () => {
    const ledger = (
      await sql<{ entity: string; tenant_id: string; extracted: string; staged: string; rejected: string }>`
      select entity, tenant_id, extracted, staged, rejected from ${wh('load_batches')} where run_id = ${day2Run}`.execute(h.rt.db)
    ).rows;
    const stored = await h.rt.db
      .selectFrom('rejects')
      .select(['entity', 'tenant_id', (eb) => eb.fn.countAll<string>().as('n')])
      .where('run_id', '=', day2Run)
      .where('kind', '=', 'extract')
      .groupBy(['entity', 'tenant_id'])
      .execute();
    for (const l of ledger) {
      expect(Number(l.extracted), `${l.entity}/${l.tenant_id}`).toBe(Number(l.staged) + Number(l.rejected));
      const hubRows = Number(
        (
          await sql<{
            n: string;
          }>`select count(*) as n from ${hubTable(HUB_ENTITIES[l.entity]!.table)}${sql.raw(HUB_ENTITIES[l.entity]!.tenantColumn ? ` where tenant_id = '${l.tenant_id}'` : '')}`.execute(
            h.rt.db,
          )
        ).rows[0]!.n,
      );
      expect(Number(l.extracted), `${l.entity}/${l.tenant_id}`).toBe(hubRows);
      expect(Number(l.rejected)).toBe(Number(stored.find((s) => s.entity === l.entity && s.tenant_id === l.tenant_id)?.n ?? 0));
    }
    expect(
      ledger
        .filter((l) => l.entity === 'workers')
        .map((l) => [l.tenant_id, Number(l.rejected)])
        .sort(),
    ).toEqual(
      [
        [big, 1],
        [small, 4],
      ].sort(),
    );
    // The rows of no valid tenant are the global scope's, reported once each.
    expect(stored.filter((s) => s.tenant_id === null || s.tenant_id === '..').map((s) => Number(s.n))).toEqual([1, 1]);

    // Every row not rejected is in the warehouse as the hub holds it; every rejected one as it was on day 1.
    const snapshot = (
      await sql<{
        at: string;
      }>`select to_char(max(snapshot_at) at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from ${wh('load_batches')} where run_id = ${day2Run}`.execute(
        h.rt.db,
      )
    ).rows[0]!.at;
    // A row whose tenant id the hub lost or broke is rejected too: its key stays in its tenant as it was.
    const rejectedKeys = new Set(planted.map((p) => p.key));
    const keyOf = (row: string) => row.split('|')[1]!;
    for (const tenant of [big, small]) {
      const now = (await hubState(h, workers, tenant)).filter((r) => !rejectedKeys.has(keyOf(r)));
      const kept = day1Workers.filter((r) => r.startsWith(`${tenant}|`) && rejectedKeys.has(keyOf(r)));
      expect((await asOf(h, workers, snapshot, tenant)).sort()).toEqual([...now, ...kept].sort());
    }
  });

  it('keeps a rejected worker loaded before as it was: current, no tombstone, no change row', async () => {
    const id = planted[0]!.key;
    const versions = (
      await sql<{ is_current: boolean; is_deleted: boolean; status: string; run_id: string }>`
      select is_current, is_deleted, status, run_id::int as run_id from ${wh('workers_history')} where tenant_id = ${big} and worker_id = ${id}`.execute(
        h.rt.db,
      )
    ).rows;
    expect(versions).toEqual([{ is_current: true, is_deleted: false, status: expect.stringMatching(/^(active|on_leave|terminated)$/), run_id: day1Run }]);
    expect((await sql`select 1 from ${wh('workers_current')} where worker_id = ${id}`.execute(h.rt.db)).rows).toHaveLength(1);
    const changes = await sql`select 1 from ${wh('workers_changes')} where worker_id = ${id} and run_id = ${day2Run}`.execute(h.rt.db);
    expect(changes.rows).toHaveLength(0);
    const load = (
      await sql<{ deleted: string }>`select deleted from ${wh('load_batches')} where entity = 'workers' and tenant_id = ${big} and run_id = ${day2Run}`.execute(
        h.rt.db,
      )
    ).rows[0]!;
    expect(Number(load.deleted)).toBe(0);
  });

  it('reconciles a rejected key as rejected, not missing; rejects above 0.1% of a tenant fail its reconcile', async () => {
    const recs = await h.rt.db.selectFrom('reconciliations').selectAll().where('run_id', '=', day2Run).where('entity', '=', 'workers').execute();
    const of = (t: string) => recs.find((r) => r.tenant_id === t)!;
    // One of 1,000+ is below the line: the kept day-1 row is neither missing nor compared.
    expect(of(big)).toMatchObject({ rejected: 1, missing_in_source: 0, missing_in_target: 0, mismatched: 0, status: 'ok' });
    expect(of(big).current_count).toBe(of(big).staged_count);
    expect(of(big).mismatch_rate).toBeCloseTo(1 / of(big).source_count, 9);
    expect(of(small)).toMatchObject({ rejected: 4, missing_in_source: 0, missing_in_target: 0, status: 'failed' });
    const states = await taskStates(h.rt, day2Run);
    // The small tenant's, and the global scope's: the rows of no valid tenant are loaded nowhere.
    expect(Object.entries(states).filter(([, s]) => s !== 'success')).toEqual([
      [expect.stringMatching(/^reconcile/), 'failed'],
      [expect.stringMatching(/^reconcile/), 'failed'],
    ]);
    const run = await h.rt.db.selectFrom('dag_runs').select('state').where('id', '=', day2Run).executeTakeFirstOrThrow();
    expect(run.state).toBe('failed');
    const errors = await h.rt.db
      .selectFrom('task_instances')
      .select('error')
      .where('run_id', '=', day2Run)
      .where('task_id', '=', 'reconcile')
      .where('state', '=', 'failed')
      .execute();
    // Sorted: the global scope's, '_global', comes first.
    const messages = errors.map((e) => (e.error as { message: string }).message).sort();
    expect(messages).toEqual([
      expect.stringContaining('workers/_global: 0 missing in warehouse, 0 missing in hub, 0 mismatched, 2 rejected, rate 100.000%'),
      expect.stringContaining(`workers/${small}:`),
    ]);
    expect(messages.find((m) => m.includes(small))).toContain('4 rejected');
    expect(recs.find((r) => r.tenant_id === '_global')).toMatchObject({ source_count: 2, rejected: 2, staged_count: 0, status: 'failed' });
  });

  it('shows rejects on the run page and in the API by field and rule, personal values masked', async () => {
    const app = await createHubflowServer(h.rt);
    try {
      const api = (await app.inject({ method: 'GET', url: `/api/runs/${day2Run}` })).json() as {
        rejects: { entity: string; field: string; rule: string; reason: string; records: number }[];
      };
      expect(api.rejects).toContainEqual({
        task_id: 'extract',
        entity: 'workers',
        field: 'birth_date',
        rule: 'type',
        reason: "birth_date: '19•••••••0' is not a valid date",
        records: 1,
      });
      const page = (await app.inject({ method: 'GET', url: `/runs/${day2Run}` })).body;
      expect(page).toContain('<h2>Rejected records</h2>');
      expect(page).toMatch(/<code>gender<\/code><\/td><td><code>enum<\/code><\/td>/);
      for (const body of [page, JSON.stringify(api)]) expect(body).not.toContain('1990-02-30');
    } finally {
      await app.close();
    }
  });
});
