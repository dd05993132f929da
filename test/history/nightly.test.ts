import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearTasks } from '../../server/engine/clear.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { mutateHub } from '../../demo/mutate.ts';
import { taskStates, waitForRun } from '../support.ts';
import { asOf, ENTITIES, historyHarness, hubState, runNight, type HistoryHarness } from './support.ts';

let h: HistoryHarness;
const states: { day: string; runId: number; hub: Map<string, string[]> }[] = [];

async function captureAndRun(day: string) {
  const hub = new Map<string, string[]>();
  for (const e of ENTITIES) hub.set(e.name, await hubState(h, e));
  const run = await runNight(h, day);
  expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
  states.push({ day, runId: run.id, hub });
}

const count = async (table: string) =>
  Number((await sql<{ n: string }>`select count(*) as n from ${sql.raw(`${h.whSchema}.${table}`)}`.execute(h.rt.db)).rows[0]!.n);

beforeAll(async () => {
  h = await historyHarness({ tenants: 3, workers: 300 });
  await captureAndRun('2026-01-01');
  for (const [i, day] of ['2026-01-02', '2026-01-03', '2026-01-04'].entries()) {
    await mutateHub(h.rt.connections.hub(), h.hubSchema, { seed: i + 1, rate: 0.05 });
    await captureAndRun(day);
  }
}, 120_000);

afterAll(async () => {
  await h?.close();
});

describe('the nightly hub -> warehouse history', () => {
  it('gives, as of every run snapshot, exactly what the hub held then, field for field', async () => {
    const ledger = (
      await sql<{
        day: string;
      }>`select distinct logical_date::text as day from ${sql.raw(`${h.whSchema}.load_batches`)} where entity = 'workers' order by 1`.execute(h.rt.db)
    ).rows;
    expect(ledger.map((l) => l.day)).toEqual(states.map((s) => s.day));
    for (const state of states) {
      // Each scope (tenant, or '' for reference data) has its own snapshot instant: as of it, the
      // warehouse must hold exactly that scope's rows as the hub held them.
      const snaps = (
        await sql<{ tenant_id: string; entity: string; at: string }>`
        select tenant_id, entity, to_char(snapshot_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at
        from ${sql.raw(`${h.whSchema}.load_batches`)} where logical_date = ${state.day}::date`.execute(h.rt.db)
      ).rows;
      expect(snaps).toHaveLength(ENTITIES.filter((e) => e.tenantColumn).length * 3 + ENTITIES.filter((e) => !e.tenantColumn).length);
      for (const snap of snaps) {
        const e = HUB_ENTITIES[snap.entity]!;
        const expected = state.hub.get(e.name)!.filter((row) => !e.tenantColumn || row.startsWith(`${snap.tenant_id}|`));
        expect(expected.length).toBeGreaterThan(0);
        expect(await asOf(h, e, snap.at, snap.tenant_id), `${e.name} of '${snap.tenant_id}' as of ${state.day}`).toEqual(expected);
      }
    }
  });

  it('keeps the history contract: one current row per key, contiguous versions, current = source totals', async () => {
    for (const e of ENTITIES) {
      const t = `${h.whSchema}.${e.name}_history`;
      const ids = [...(e.tenantColumn ? ['tenant_id'] : []), ...e.key].join(', ');
      const { rows } = await sql<{ dup_current: number; gaps: number; bad_current: number; twins: number }>`
        with v as (
          select *, lead(valid_from) over w as next_from, lag(row_hash) over w as prev_hash, lag(is_deleted) over w as prev_deleted
          from ${sql.raw(t)} window w as (partition by ${sql.raw(ids)} order by valid_from))
        select
          (select count(*) from (select ${sql.raw(ids)} from ${sql.raw(t)} where valid_to is null group by ${sql.raw(ids)} having count(*) > 1) x) as dup_current,
          count(*) filter (where next_from is distinct from valid_to or valid_from >= coalesce(valid_to, 'infinity')) as gaps,
          count(*) filter (where is_current <> (valid_to is null)) as bad_current,
          count(*) filter (where prev_hash = row_hash and prev_deleted = is_deleted) as twins
        from v`.execute(h.rt.db);
      expect(rows[0], e.name).toEqual({ dup_current: 0, gaps: 0, bad_current: 0, twins: 0 });
    }
    const recon = await h.rt.db
      .selectFrom('reconciliations')
      .select(['status', 'mismatched', 'missing_in_target', 'missing_in_source', 'matched', 'staged_count'])
      .execute();
    expect(recon.length).toBeGreaterThan(0);
    for (const r of recon) expect(r).toMatchObject({ status: 'ok', mismatched: 0, missing_in_target: 0, missing_in_source: 0, matched: r.staged_count });
  });

  it('writes one change row per changed column, with old and new values', async () => {
    const { rows } = await sql<{ column_name: string; old_value: string; new_value: string }>`
      select column_name, old_value, new_value from ${sql.raw(`${h.whSchema}.workers_changes`)} where change_type = 'update'`.execute(h.rt.db);
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) expect(r.old_value, r.column_name).not.toEqual(r.new_value);
    expect(new Set(rows.map((r) => r.column_name))).toContain('address_line1');
  });

  it('re-running a loaded date inserts nothing', async () => {
    const before = await Promise.all(ENTITIES.map((e) => count(`${e.name}_history`)));
    const changes = await count('workers_changes');
    const second = states[1]!;
    await clearTasks(h.rt.engine, second.runId, { tasks: ['extract'] });
    expect((await waitForRun(h.rt, second.runId, 45_000)).state).toBe('success');
    expect(await Promise.all(ENTITIES.map((e) => count(`${e.name}_history`)))).toEqual(before);
    expect(await count('workers_changes')).toBe(changes);
  });

  it('turns a hub delete into a tombstone and takes the key out of _current', async () => {
    const hub = h.rt.connections.hub();
    const { rows } = await sql<{
      tenant_id: string;
      worker_id: string;
    }>`select tenant_id, worker_id from ${sql.raw(`${h.hubSchema}.workers`)} order by worker_id limit 1`.execute(hub);
    const { tenant_id, worker_id } = rows[0]!;
    for (const table of ['payroll_results', 'contracts', 'workers']) {
      await sql`delete from ${sql.raw(`${h.hubSchema}.${table}`)} where tenant_id = ${tenant_id} and worker_id = ${worker_id}`.execute(hub);
    }
    const run = await runNight(h, '2026-01-05');
    expect(run.state).toBe('success');
    const versions = (
      await sql<{ is_deleted: boolean; is_current: boolean }>`
      select is_deleted, is_current from ${sql.raw(`${h.whSchema}.workers_history`)} where tenant_id = ${tenant_id} and worker_id = ${worker_id} order by valid_from`.execute(
        h.rt.db,
      )
    ).rows;
    expect(versions.at(-1)).toEqual({ is_deleted: true, is_current: true });
    expect(versions.slice(0, -1).every((v) => !v.is_current)).toBe(true);
    const current = await sql`select 1 from ${sql.raw(`${h.whSchema}.workers_current`)} where tenant_id = ${tenant_id} and worker_id = ${worker_id}`.execute(
      h.rt.db,
    );
    expect(current.rows).toHaveLength(0);
    expect(HUB_ENTITIES.workers).toBeDefined();
  });
});
