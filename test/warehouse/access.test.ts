import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { grantTenant, listAccess, revokeTenant } from '../../tasks/history/access.ts';
import { fenceTarget } from '../../tasks/history/sql.ts';
import { TEST_DATABASE_URL } from '../support.ts';
import { applyClients, clients } from './staging.ts';
import { targets } from './targets.ts';

/**
 * Tenant access on every dialect: `hubflow warehouse grant` fences every tenant-keyed relation
 * and maps the role; the warehouse then shows the role only its tenant's rows. PostgreSQL is
 * read back as a real login role; Snowflake is held to the statements it is sent.
 */

const entities = { clients };
const tag = randomUUID().replaceAll('-', '').slice(0, 8);
const role = `hf_wh_reader_${tag}`;
let admin: pg.Client | undefined;

async function adminClient(): Promise<pg.Client> {
  if (!admin) {
    admin = new pg.Client({ connectionString: TEST_DATABASE_URL });
    await admin.connect();
  }
  return admin;
}

afterAll(async () => {
  if (!admin) return;
  await admin.query(`drop owned by ${role}`).catch(() => undefined);
  await admin.query(`drop role if exists ${role}`);
  await admin.end();
});

describe.each(targets())('tenant access: $name', (t) => {
  afterAll(() => t.close(), 120_000);

  describe.skipIf(t.skip !== null)(t.skip ?? 'runs', () => {
    // Live Snowflake would need a reader role of the account's: its SQL is checked recorded.
    it.skipIf(t.live && t.name !== 'postgres')('fences every tenant-keyed table before it maps the role, then maps and unmaps it', async () => {
      const { wh, log } = await t.open();
      const target = fenceTarget(wh, [clients]);
      const access = wh.adapter.access;
      await t.arrange(async () => {
        await applyClients(wh, 'acc1', 'acme', { runId: 1 });
        await applyClients(wh, 'acc2', 'globex', { runId: 2 });
        await (await adminClient()).query(`create role ${role} login`);
      });
      const grantee = t.live ? role : 'acme_reader';
      log.length = 0;
      await grantTenant(wh, entities, { role: grantee, tenant: 'acme', by: 'ops' });
      const sqls = log.map((l) => l.sql);
      const at = (statement: string) => sqls.indexOf(statement);

      const fence = access.fence(target);
      for (const statement of fence) expect(at(statement), statement).toBeGreaterThan(-1);
      for (const table of target.tables) for (const statement of access.bind(target, table)) expect(at(statement), statement).toBeGreaterThan(-1);
      const grant = access.grant(target, { role: grantee, tenant: 'acme', by: 'ops' });
      for (const statement of grant) expect(at(statement), statement).toBeGreaterThan(Math.max(...fence.map(at)));
      // Every tenant-keyed table is bound: the ledger, approvals, locks, each entity's history and changes.
      expect(target.tables.map((x) => x.name)).toEqual(['load_batches', 'delete_approvals', 'load_locks', 'clients_history', 'clients_changes']);

      if (t.live) {
        expect(await listAccess(wh, entities)).toEqual([{ role, tenant: 'acme', grantedBy: 'ops', grantedAt: expect.any(String) }]);
        const reader = new pg.Client({ connectionString: Object.assign(new URL(TEST_DATABASE_URL), { username: role, password: '' }).toString() });
        await reader.connect();
        try {
          const seen = async () => {
            const out: string[] = [];
            for (const rel of [...target.tables.map((x) => x.table), ...target.views]) {
              const { rows } = await reader.query<{ t: string }>(`select distinct tenant_id as t from ${rel}`);
              out.push(...rows.map((r) => `${rel}:${r.t}`));
            }
            return out;
          };
          const mine = await seen();
          expect(mine.filter((x) => !x.endsWith(':acme'))).toEqual([]);
          expect(mine).toContain(`${wh.table('clients_current')}:acme`);
          expect(await revokeTenant(wh, entities, { role, tenant: 'acme' })).toBe(true);
          expect(await seen()).toEqual([]);
        } finally {
          await reader.end();
        }
      } else {
        log.length = 0;
        await revokeTenant(wh, entities, { role: grantee, tenant: 'acme' });
        expect(log.map((l) => l.sql)).toContain(access.revoke(target, { role: grantee, tenant: 'acme' })[0]);
      }
    });
  });
});

describe('tenant access on Snowflake, at the SQL it issues', () => {
  it('lets the loader role through, reads the mapping with IS_ROLE_IN_SESSION, binds only unbound tables and grants the schema', async () => {
    const [recorded] = targets().filter((x) => !x.live);
    const { wh, log } = await recorded!.open({ bound: ['LOAD_BATCHES', 'CLIENTS_HISTORY'] });
    await grantTenant(wh, entities, { role: 'acme_reader', tenant: 'acme', by: 'ops' });
    const sqls = log.map((l) => l.sql);
    const policy = '"ANALYTICS"."HISTORY"."HUBFLOW_TENANT_POLICY"';
    const mapping = '"ANALYTICS"."HISTORY"."TENANT_ACCESS"';
    const body = `row_tenant = '_global' or exists (select 1 from ${mapping} a where a.tenant_id in (row_tenant, '*') and is_role_in_session(a.role_name))`;
    expect(sqls).toContain(`create row access policy if not exists ${policy} as (row_tenant varchar) returns boolean -> ${body}`);
    expect(sqls).toContain(`alter row access policy ${policy} set body -> ${body}`);
    // The loads' own role reads every tenant, mapped before the policy can bind anything.
    const loader = sqls.findIndex((s) => s.startsWith(`insert into ${mapping} (role_name, tenant_id, granted_by, granted_at) select current_role(), '*'`));
    expect(loader).toBeGreaterThan(-1);
    expect(loader).toBeLessThan(sqls.findIndex((s) => s.includes('add row access policy')));
    expect(sqls.filter((s) => s.includes('add row access policy'))).toEqual(
      ['DELETE_APPROVALS', 'LOAD_LOCKS', 'CLIENTS_CHANGES'].map(
        (n) => `alter table "ANALYTICS"."HISTORY"."${n}" add row access policy ${policy} on (tenant_id)`,
      ),
    );
    for (const g of [
      'grant usage on database "ANALYTICS" to role "ACME_READER"',
      'grant usage on schema "ANALYTICS"."HISTORY" to role "ACME_READER"',
      'grant select on all tables in schema "ANALYTICS"."HISTORY" to role "ACME_READER"',
      'grant select on all views in schema "ANALYTICS"."HISTORY" to role "ACME_READER"',
    ])
      expect(sqls).toContain(g);
    expect(sqls.at(-1)).toMatch(
      new RegExp(
        `^insert into ${mapping.replaceAll('.', '\\.')} \\(role_name, tenant_id, granted_by, granted_at\\) select 'ACME_READER', 'acme', 'ops', current_timestamp`,
      ),
    );
  });
});
