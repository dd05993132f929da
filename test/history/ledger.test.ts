import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearTasks } from '../../server/engine/clear.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { alertWebhook, taskStates, waitForRun, type AlertWebhook } from '../support.ts';
import { asOf, historyHarness, hubState, type HistoryHarness } from './support.ts';

/**
 * The load ledger is keyed by the data interval a run covers: a manual and a scheduled run of
 * the same interval are one load, a later snapshot of a loaded interval applies what changed,
 * an older one is skipped (visibly), and a run's staging stays while anything may need it.
 */

let h: HistoryHarness;
let webhook: AlertWebhook<{ kind: string; message: string; runId: number }>;
let tenants: string[];
const workers = HUB_ENTITIES.workers!;
const wh = (table: string) => sql.raw(`${h.whSchema}.${table}`);
const hub = (table: string) => sql.raw(`${h.hubSchema}.${table}`);

// The nightly interval of 2026-01-05 (Europe/London is UTC in January): the scheduled run's
// logical date is its start; a manual run on the 6th after 02:00 covers the same interval.
const SCHEDULED = new Date('2026-01-05T02:00:00Z');
const INTERVAL_START = '2026-01-05T02:00:00Z';
const manualAt = (hour: number) => new Date(`2026-01-06T${String(hour).padStart(2, '0')}:00:00Z`);

async function run(options: { logicalDate: Date; runType?: 'scheduled' | 'manual'; conf?: Record<string, unknown> }) {
  const created = await h.rt.engine.triggerRun('hub-nightly', options);
  const finished = await waitForRun(h.rt, created.id, 60_000);
  return { id: created.id, state: finished.state, tasks: await taskStates(h.rt, created.id) };
}

async function ledger() {
  const { rows } = await sql<{ entity: string; tenant_id: string; run_id: number; snapshot_at: string; logical_date: string }>`
    select entity, tenant_id, run_id::int, to_char(snapshot_at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as snapshot_at, logical_date::text
    from ${wh('load_batches')} where interval_start = ${INTERVAL_START}::timestamptz order by snapshot_at, tenant_id, entity`.execute(h.rt.db);
  return rows;
}

async function tiOf(runId: number, taskId: string) {
  return h.rt.db
    .selectFrom('task_instances')
    .select(['map_index', 'state', 'error', 'try_number', 'result'])
    .where('run_id', '=', runId)
    .where('task_id', '=', taskId)
    .orderBy('map_index')
    .execute();
}

const historyCount = async () => Number((await sql<{ n: string }>`select count(*) as n from ${wh('workers_history')}`.execute(h.rt.db)).rows[0]!.n);

async function touchWorkers(tenant: string, n: number, value: string): Promise<void> {
  await sql`update ${hub('workers')} set address_line1 = ${value}, updated_at = now()
    where (tenant_id, worker_id) in (select tenant_id, worker_id from ${hub('workers')} where tenant_id = ${tenant} order by worker_id limit ${n})`.execute(
    h.rt.connections.hub(),
  );
}

const scopeDir = (runId: number, scope: string) => path.join(h.staging, 'history', 'hub-nightly', `run-${runId}`, scope);

beforeAll(async () => {
  webhook = await alertWebhook();
  h = await historyHarness({ tenants: 2, workers: 200, seed: 21, env: { HUBFLOW_ALERT_WEBHOOK: webhook.url } });
  tenants = (await sql<{ t: string }>`select distinct tenant_id as t from ${hub('clients')} order by 1`.execute(h.rt.db)).rows.map((r) => r.t);
}, 60_000);

afterAll(async () => {
  await h?.close();
  webhook?.close();
});

const runs: Record<string, number> = {};

describe('the load ledger, keyed by data interval', () => {
  it('treats a manual run and the scheduled run of the same interval as one load', async () => {
    const manual = await run({ logicalDate: manualAt(9) });
    expect(manual.state, JSON.stringify(manual.tasks)).toBe('success');
    runs.manual = manual.id;
    const first = await ledger();
    // Every entity of both tenants and the reference data, keyed by the interval, whatever the logical date.
    expect(first).toHaveLength(
      Object.values(HUB_ENTITIES).filter((e) => e.tenantColumn).length * 2 + Object.values(HUB_ENTITIES).filter((e) => !e.tenantColumn).length,
    );
    expect(new Set(first.map((r) => r.logical_date))).toEqual(new Set(['2026-01-05']));
    const versions = await historyCount();

    const scheduled = await run({ logicalDate: SCHEDULED, runType: 'scheduled' });
    expect(scheduled.state, JSON.stringify(scheduled.tasks)).toBe('success');
    runs.scheduled = scheduled.id;
    // The hub did not change: the same load, no ledger row, no version; and it is reconciled.
    expect(await ledger()).toEqual(first);
    expect(await historyCount()).toBe(versions);
    const loads = await tiOf(scheduled.id, 'load');
    const statuses = loads.flatMap((l) => (l.result as { entities: { status: string }[] }).entities.map((e) => e.status));
    expect(new Set(statuses)).toEqual(new Set(['unchanged']));
    const recon = await h.rt.db.selectFrom('reconciliations').select(['status', 'logical_date']).where('run_id', '=', scheduled.id).execute();
    expect(recon.length).toBe(first.length);
    expect(recon.every((r) => r.status === 'ok')).toBe(true);
  });

  it("keeps a run's staging until a later run reconciles the scope clean; a clear after that says so, or what to run", async () => {
    // The scheduled run reconciled every scope clean: the manual run's files went, its marker stays.
    expect(await readdir(scopeDir(runs.manual!, tenants[0]!))).toEqual(['snapshot.json']);
    expect((await readdir(scopeDir(runs.scheduled!, tenants[0]!))).length).toBeGreaterThan(1);
    await clearTasks(h.rt.engine, runs.manual!, { tasks: ['reconcile'] });
    expect((await waitForRun(h.rt, runs.manual!, 30_000)).state).toBe('success');
    for (const r of await tiOf(runs.manual!, 'reconcile')) {
      expect(r.state).toBe('skipped');
      expect((r.error as { message: string }).message).toContain(`hubflow reconcile report --run ${runs.scheduled}`);
    }

    // Staging lost outside hubflow: at once (one try), no raw ENOENT, the command that repairs it.
    await rm(path.join(h.staging, 'history', 'hub-nightly', `run-${runs.scheduled}`), { recursive: true });
    await clearTasks(h.rt.engine, runs.scheduled!, { tasks: ['reconcile'] });
    expect((await waitForRun(h.rt, runs.scheduled!, 30_000)).state).toBe('failed');
    const retried = await h.rt.db
      .selectFrom('attempts as a')
      .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
      .select('a.outcome')
      .where('ti.run_id', '=', runs.scheduled!)
      .where('a.outcome', '=', 'retry')
      .execute();
    expect(retried).toEqual([]);
    for (const r of await tiOf(runs.scheduled!, 'reconcile')) {
      expect(r.state).toBe('failed');
      const message = (r.error as { message: string }).message;
      expect(message).toContain(`hubflow tasks clear ${runs.scheduled} --task extract`);
      expect(message).not.toContain('ENOENT');
    }
    // Doing what it says re-extracts, and the run ends green.
    await clearTasks(h.rt.engine, runs.scheduled!, { tasks: ['extract'] });
    expect((await waitForRun(h.rt, runs.scheduled!, 60_000)).state).toBe('success');
  });

  it('applies a later snapshot of a loaded interval when the hub changed, dated after the earlier one', async () => {
    const before = await ledger();
    const [tenant] = tenants;
    await touchWorkers(tenant!, 3, 'Resynced Road 1');
    const later = await run({ logicalDate: manualAt(10) });
    expect(later.state, JSON.stringify(later.tasks)).toBe('success');
    runs.later = later.id;
    const after = await ledger();
    const added = after.filter((r) => !before.some((b) => b.snapshot_at === r.snapshot_at && b.entity === r.entity && b.tenant_id === r.tenant_id));
    // Only what changed gets a row: the one tenant's workers.
    expect(added.map((r) => [r.entity, r.tenant_id, r.run_id])).toEqual([['workers', tenant, later.id]]);
    const previous = before.filter((r) => r.entity === 'workers' && r.tenant_id === tenant).at(-1)!;
    const { rows } = await sql<{ n: number; inside: number }>`
      select count(*)::int as n, count(*) filter (where valid_from > ${previous.snapshot_at}::timestamptz and valid_from <= ${added[0]!.snapshot_at}::timestamptz)::int as inside
      from ${wh('workers_history')} where run_id = ${later.id}`.execute(h.rt.db);
    expect(rows[0]).toEqual({ n: 3, inside: 3 });
    expect(await asOf(h, workers, added[0]!.snapshot_at, tenant)).toEqual(await hubState(h, workers, tenant));
  });

  it('skips, visibly and green, the load of a snapshot older than one already applied', async () => {
    const versions = await historyCount();
    await clearTasks(h.rt.engine, runs.scheduled!, { tasks: ['load'] });
    const cleared = await waitForRun(h.rt, runs.scheduled!, 30_000);
    expect(cleared.state).toBe('success');
    const loads = await tiOf(runs.scheduled!, 'load');
    const tenantLoad = loads.find((l) => ((l.error as { message?: string } | null)?.message ?? '').startsWith(`${tenants[0]}:`))!;
    expect(tenantLoad.state).toBe('skipped');
    expect((tenantLoad.error as { name: string; message: string }).name).toBe('SkipTaskError');
    expect((tenantLoad.error as { message: string }).message).toMatch(new RegExp(`is older than the one run ${runs.later} applied`));
    // The scopes the later run did not change were last applied by the manual run's re-extract: also newer.
    expect(loads.every((l) => l.state === 'skipped')).toBe(true);
    const recon = await tiOf(runs.scheduled!, 'reconcile');
    expect(recon.every((r) => r.state === 'skipped' && (r.error as { message: string }).message.includes('was skipped:'))).toBe(true);
    expect(await historyCount()).toBe(versions);
  });

  it('skips the reconciliation of a superseded snapshot, pointing at the newer one', async () => {
    await clearTasks(h.rt.engine, runs.manual!, { tasks: ['reconcile'] });
    expect((await waitForRun(h.rt, runs.manual!, 30_000)).state).toBe('success');
    const recon = await tiOf(runs.manual!, 'reconcile');
    const tenantRecon = recon.find((r) => ((r.error as { message?: string } | null)?.message ?? '').startsWith(`${tenants[0]}:`))!;
    expect(tenantRecon.state).toBe('skipped');
    expect((tenantRecon.error as { message: string }).message).toContain(`hubflow reconcile report --run ${runs.later}`);
  });
});

describe('re-sync of chosen tenants', () => {
  it('loads only the chosen tenant, leaving every other tenant and the reference data untouched', async () => {
    const [chosen, other] = tenants;
    await touchWorkers(chosen!, 2, 'Chosen Street 2');
    await touchWorkers(other!, 2, 'Other Street 2');
    const before = await ledger();
    const otherHistory = await sql`select * from ${wh('workers_history')} where tenant_id = ${other} order by worker_id, valid_from`.execute(h.rt.db);
    const resync = await run({ logicalDate: manualAt(11), conf: { tenants: [chosen] } });
    expect(resync.state, JSON.stringify(resync.tasks)).toBe('success');
    expect((await tiOf(resync.id, 'tenants'))[0]!.result).toEqual([chosen]);
    expect(Object.keys(resync.tasks).filter((t) => t.startsWith('extract'))).toEqual(['extract[0]']);
    const added = (await ledger()).filter((r) => !before.some((b) => b.snapshot_at === r.snapshot_at));
    expect(added.map((r) => [r.entity, r.tenant_id])).toEqual([['workers', chosen]]);
    expect((await sql`select * from ${wh('workers_history')} where tenant_id = ${other} order by worker_id, valid_from`.execute(h.rt.db)).rows).toEqual(
      otherHistory.rows,
    );
    expect(await asOf(h, workers, added[0]!.snapshot_at, chosen)).toEqual(await hubState(h, workers, chosen));
  });

  it('loads the reference data alone with an empty tenant list and global', async () => {
    const globalOnly = await run({ logicalDate: manualAt(19), conf: { tenants: [], global: true } });
    expect(globalOnly.state, JSON.stringify(globalOnly.tasks)).toBe('success');
    expect((await tiOf(globalOnly.id, 'tenants'))[0]!.result).toEqual([null]);
  });

  it('fails at once, naming it, on a tenant the hub does not have or an invalid id', async () => {
    let hour = 12;
    for (const [conf, message] of [
      [{ tenants: ['no-such-tenant'] }, /conf\.tenants: 'no-such-tenant' is not a tenant of the hub \(no rows in any of its tables\); its tenants: /],
      [{ tenants: ['..'] }, /conf\.tenants: tenant id "\.\." is not 1-64 characters/],
      [{ tenants: 'acme' }, /conf\.tenants: a list of tenant ids/],
      [{ tenants: [] }, /conf\.tenants: name at least one tenant, or add "global": true/],
    ] as const) {
      const failed = await run({ logicalDate: manualAt(hour++), conf });
      expect(failed.state).toBe('failed');
      const [ti] = await tiOf(failed.id, 'tenants');
      expect(ti!.try_number).toBe(1);
      expect((ti!.error as { message: string }).message).toMatch(message);
      expect(await tiOf(failed.id, 'extract')).toEqual([expect.objectContaining({ state: 'upstream_failed' })]);
    }
  });
});

describe('tenants that are no scope', () => {
  it('runs the reference data once for a NULL tenant, and never makes a scope (or a folder) of an invalid id', async () => {
    // A hub looser than the demo's: clients without a tenant, and tenants named like paths.
    await sql`alter table ${hub('clients')} drop constraint clients_pkey`.execute(h.rt.db);
    await sql`alter table ${hub('clients')} alter column tenant_id drop not null`.execute(h.rt.db);
    for (const [tenant, id] of [
      [null, 'CNULL'],
      ['..', 'CDOTS'],
      ['.', 'CDOT'],
      ['', 'CEMPTY'],
      ['a/b', 'CSLASH'],
    ] as const) {
      await sql`insert into ${hub('clients')} (tenant_id, client_id, name, billing_country, billing_currency, status) values (${tenant}, ${id}, 'Loose', 'GB', 'GBP', 'active')`.execute(
        h.rt.db,
      );
    }
    const loose = await run({ logicalDate: manualAt(20) });
    const scopes = (await tiOf(loose.id, 'tenants'))[0]!.result as (string | null)[];
    expect(scopes.filter((s) => s === null)).toHaveLength(1);
    expect([...scopes].sort()).toEqual([null, ...tenants].sort());
    const leftOut = await h.rt.db
      .selectFrom('rejects')
      .select(['tenant_id', 'field', 'reason'])
      .where('run_id', '=', loose.id)
      .where('kind', '=', 'tenant')
      .orderBy('record_key')
      .execute();
    const byId = (a: string | null, b: string | null) => JSON.stringify(a).localeCompare(JSON.stringify(b));
    expect(leftOut.map((r) => r.tenant_id).sort(byId)).toEqual(['', '.', '..', 'a/b', null].sort(byId));
    expect(leftOut.find((r) => r.tenant_id === null)!.reason).toMatch(/^tenant id is missing \(null\): no scope/);
    expect(leftOut.find((r) => r.tenant_id === '..')!.reason).toMatch(/^tenant id "\.\." is not 1-64 characters/);
    // Said where an operator looks: an escalation naming each one.
    const alert = webhook.alerts.find((a) => a.runId === loose.id && a.kind === 'task_alert');
    expect(alert?.message).toMatch(/^5 tenants of the hub left out of this run, their rows rejected by the extract: /);
    expect(alert?.message).toContain('NULL (tenant id is missing (null))');
    expect(alert?.message).toContain('".." (tenant id ".." is not 1-64 characters');
    // Only the scopes' folders exist: nothing named after an invalid id, nowhere outside the staging folder.
    expect((await readdir(path.join(h.staging, 'history', 'hub-nightly', `run-${loose.id}`))).sort()).toEqual(['_global', ...tenants].sort());
    expect(await readdir(path.join(h.staging, 'history'))).toEqual(['hub-nightly']);
  });

  it('still extracts a tenant whose client row lost its tenant id: its other rows are a scope of their own', async () => {
    // Found by the property test (seed 12345): the tenant vanished from the scopes, and its workers were neither loaded nor rejected.
    const [tenant] = tenants as [string];
    await sql`update ${hub('clients')} set tenant_id = null where tenant_id = ${tenant}`.execute(h.rt.db);
    try {
      const night = await run({ logicalDate: manualAt(21) });
      const scopes = (await tiOf(night.id, 'tenants'))[0]!.result as (string | null)[];
      expect(scopes).toContain(tenant);
      const extracts = (await tiOf(night.id, 'extract')).map(
        (t) => t.result as { scope: string | null; entities: { entity: string; extracted: number; staged: number }[] } | null,
      );
      const workers = extracts.find((x) => x?.scope === tenant)?.entities.find((e) => e.entity === 'workers');
      expect(workers).toMatchObject({
        extracted: (await hubState(h, HUB_ENTITIES.workers!, tenant)).length,
        staged: (await hubState(h, HUB_ENTITIES.workers!, tenant)).length,
      });
    } finally {
      await sql`update ${hub('clients')} set tenant_id = ${tenant} where tenant_id is null and client_id not in ('CNULL')`.execute(h.rt.db);
    }
  });
});
