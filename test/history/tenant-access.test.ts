import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { grantTenant, listAccess, revokeTenant } from '../../tasks/history/access.ts';
import { fenceTarget } from '../../tasks/history/sql.ts';
import { TEST_DATABASE_URL } from '../support.ts';
import { type HistoryHarness, historyHarness, runNight } from './support.ts';

/**
 * Tenant access on PostgreSQL, as the analysts' own roles see it: after a nightly load of three
 * tenants, a role mapped to one tenant reads only that tenant's rows in every history, changes
 * and current relation (and the ledger); a role with no mapping reads none; both read the
 * global reference data. Each role logs in itself, as a BI tool would.
 */

const tag = randomUUID().replaceAll('-', '').slice(0, 8);
const analyst = `hf_analyst_${tag}`;
const stranger = `hf_stranger_${tag}`;
const roles = [analyst, stranger];
const root = fileURLToPath(new URL('../..', import.meta.url));

let h: HistoryHarness;
let tenants: string[];

function urlAs(user: string): string {
  const url = new URL(TEST_DATABASE_URL);
  url.username = user;
  url.password = '';
  return url.toString();
}

/** Runs `fn` on a connection logged in as `role`. */
async function as<T>(role: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: urlAs(role) });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** Per tenant-keyed relation (by its bare name): the tenants the role sees, with their row counts. */
async function seen(role: string): Promise<Record<string, Record<string, number>>> {
  const t = fenceTarget(await h.rt.connections.warehouse(), Object.values(HUB_ENTITIES));
  return as(role, async (c) => {
    const out: Record<string, Record<string, number>> = {};
    for (const rel of [...t.tables.map((x) => x.table), ...t.views]) {
      const { rows } = await c.query<{ t: string; n: string }>(`select tenant_id as t, count(*) as n from ${rel} group by 1`);
      out[rel.split('.').at(-1)!.replaceAll('"', '')] = Object.fromEntries(rows.map((r) => [r.t, Number(r.n)]));
    }
    return out;
  });
}

function hubflowCli(...args: string[]) {
  return spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], { env: { ...process.env, ...h.rt.env }, encoding: 'utf8', timeout: 60_000 });
}

beforeAll(async () => {
  h = await historyHarness({ tenants: 3, workers: 90, seed: 21 });
  for (const role of roles) await sql`create role ${sql.id(role)} login`.execute(h.rt.db);
  expect((await runNight(h, '2026-03-02')).state).toBe('success');
  const { rows } = await sql<{ t: string }>`select distinct tenant_id as t from ${sql.raw(`${h.whSchema}.workers_current`)} order by 1`.execute(h.rt.db);
  tenants = rows.map((r) => r.t);
  expect(tenants).toHaveLength(3);
}, 120_000);

afterAll(async () => {
  for (const role of roles) {
    // Its grants on the schema go first: a role that holds any cannot be dropped.
    await sql`drop owned by ${sql.id(role)}`.execute(h.rt.db);
    await sql`drop role if exists ${sql.id(role)}`.execute(h.rt.db);
  }
  await h?.close();
});

describe('tenant access on PostgreSQL', () => {
  it("gives a granted role its tenant's rows in every relation and none of another tenant's", async () => {
    const wh = await h.rt.connections.warehouse();
    const mine = tenants[1]!;
    const cli = hubflowCli('warehouse', 'grant', mine, '--role', analyst, '--by', 'test');
    expect(cli.stderr).toBe('');
    expect(cli.stdout).toBe(`granted: role ${analyst} reads tenant '${mine}'\n`);
    expect(await listAccess(wh, HUB_ENTITIES)).toEqual([{ role: analyst, tenant: mine, grantedBy: 'test', grantedAt: expect.any(String) }]);

    const view = await seen(analyst);
    for (const [rel, byTenant] of Object.entries(view)) {
      expect(
        Object.keys(byTenant).filter((t) => t !== mine && t !== '_global'),
        rel,
      ).toEqual([]);
    }
    // Its own rows are all there: history, current and the ledger as the owner sees them.
    const owner = await seen('postgres');
    for (const rel of ['workers_history', 'workers_current', 'load_batches']) {
      expect(view[rel]![mine], rel).toBe(owner[rel]![mine]);
      expect(view[rel]![mine], rel).toBeGreaterThan(0);
    }
    // The ledger's global rows and the reference data are everyone's.
    expect(view.load_batches!._global).toBe(owner.load_batches!._global);
    const countries = await as(analyst, (c) => c.query<{ n: string }>(`select count(*) as n from ${h.whSchema}.countries_current`));
    expect(Number(countries.rows[0]!.n)).toBeGreaterThan(0);
  });

  it('shows a role with no mapping no tenant rows anywhere, and the mapping table only its own rows', async () => {
    const wh = await h.rt.connections.warehouse();
    // Schema rights through a grant of another tenant, then taken away: rights alone show nothing.
    await grantTenant(wh, HUB_ENTITIES, { role: stranger, tenant: tenants[0]!, by: 'test' });
    expect(await revokeTenant(wh, HUB_ENTITIES, { role: stranger, tenant: tenants[0]! })).toBe(true);
    const view = await seen(stranger);
    for (const [rel, byTenant] of Object.entries(view))
      expect(
        Object.keys(byTenant).filter((t) => t !== '_global'),
        rel,
      ).toEqual([]);
    const mappings = await as(stranger, (c) => c.query(`select * from ${h.whSchema}.tenant_access`));
    expect(mappings.rows).toEqual([]);
  });

  it('takes a revoked tenant away at once, and tells a revoke of nothing apart', async () => {
    const mine = tenants[1]!;
    const out = hubflowCli('warehouse', 'revoke', mine, '--role', analyst);
    expect(out.stdout).toBe(`revoked: role ${analyst} no longer reads tenant '${mine}'\n`);
    const view = await seen(analyst);
    expect(Object.values(view.workers_current!)).toEqual([]);
    expect(await revokeTenant(await h.rt.connections.warehouse(), HUB_ENTITIES, { role: analyst, tenant: mine })).toBe(false);
    expect(JSON.parse(hubflowCli('warehouse', 'access', '--json').stdout)).toEqual([]);
  });

  it('refuses an invalid tenant or role name, naming it', async () => {
    const wh = await h.rt.connections.warehouse();
    await expect(grantTenant(wh, HUB_ENTITIES, { role: analyst, tenant: "a'b", by: 't' })).rejects.toThrow(/tenant: tenant id "a'b" is not/);
    await expect(grantTenant(wh, HUB_ENTITIES, { role: 'x"; drop', tenant: tenants[0]!, by: 't' })).rejects.toThrow(/--role: 'x"; drop' is not a role name/);
  });

  it('keeps the loads free of it: the owner is not bound by row security, the views check the reader', async () => {
    const { rows } = await sql<{ relname: string; relrowsecurity: boolean; relforcerowsecurity: boolean }>`
      select c.relname, c.relrowsecurity, c.relforcerowsecurity from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = ${h.whSchema} and c.relkind = 'r' and c.relname like '%history' order by 1`.execute(h.rt.db);
    const keyedHistory = Object.values(HUB_ENTITIES)
      .filter((e) => e.tenantColumn)
      .map((e) => `${e.name}_history`)
      .sort();
    expect(rows.filter((r) => r.relrowsecurity).map((r) => r.relname)).toEqual(keyedHistory);
    expect(rows.some((r) => r.relforcerowsecurity)).toBe(false);
    const views = await sql<{ relname: string; reloptions: string[] | null }>`
      select c.relname, c.reloptions from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = ${h.whSchema} and c.relkind = 'v'`.execute(
      h.rt.db,
    );
    for (const v of views.rows) expect(v.reloptions, v.relname).toContain('security_invoker=on');
  });
});
