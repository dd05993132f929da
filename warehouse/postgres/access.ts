import { GLOBAL_SCOPE } from '../../hub/tenant-id.ts';
import type { TenantAccess } from '../contract.ts';
import { block, INVOKER_VIEWS, postgresDialect as d } from './sql.ts';

/**
 * Tenant access on PostgreSQL: row-level security on every tenant-keyed table, with a SELECT
 * policy that reads the mapping table as the reader (whose own row security shows it only the
 * mappings of roles it has), and views that check the reader's rights (security_invoker, 15+).
 * Row security is enabled, not forced: the tables' owner, who loads them, is not bound by it.
 */

const TENANT_POLICY = 'hubflow_tenant';
const MAPPING_POLICY = 'hubflow_own_mappings';

/** Creates `policy` on `table` unless it is there, and enables row security unless it is on (no lock when both are). */
function policyOn(table: string, policy: string, using: string): string {
  const rel = `${d.text(table)}::regclass`;
  return block(`  if not exists (select from pg_catalog.pg_policy where polrelid = ${rel} and polname = ${d.text(policy)}) then
    create policy ${d.id(policy)} on ${table} for select using (${using});
  end if;
  if not (select relrowsecurity from pg_catalog.pg_class where oid = ${rel}) then
    alter table ${table} enable row level security;
  end if;`);
}

/** The tenants the reader may see: a row's tenant is the global scope's, one mapped to a role the reader has, or any ('*'). */
function visible(mapping: string): string {
  const mapped = `array(select a.tenant_id from ${mapping} a)`;
  return `tenant_id = ${d.text(GLOBAL_SCOPE)} or tenant_id = any (${mapped}) or '*' = any (${mapped})`;
}

export const postgresAccess: TenantAccess = {
  onSchema: true,
  fence: (t) => [
    // pg_has_role with the role's oid, so a mapping whose role was dropped is ignored, not an error.
    policyOn(t.mapping, MAPPING_POLICY, `exists (select from pg_catalog.pg_roles r where r.rolname = role_name and pg_catalog.pg_has_role(r.oid, 'USAGE'))`),
    ...t.tables.map((x) => policyOn(x.table, TENANT_POLICY, visible(t.mapping))),
  ],
  boundSql: () => null,
  bind: () => [],
  grant: (t, a) => [
    block(`  if current_setting('server_version_num')::int < ${INVOKER_VIEWS} then
    raise exception 'tenant access needs PostgreSQL 15 or later, whose views check the reader''s rights (security_invoker); this server is %', current_setting('server_version');
  end if;`),
    `grant usage on schema ${t.schema} to ${d.id(a.role)}`,
    // Views and the mapping table too: row security decides which rows.
    `grant select on all tables in schema ${t.schema} to ${d.id(a.role)}`,
    `insert into ${t.mapping} (role_name, tenant_id, granted_by, granted_at) select ${d.text(a.role)}, ${d.text(a.tenant)}, ${d.text(a.by)}, current_timestamp
     where not exists (select 1 from ${t.mapping} where role_name = ${d.text(a.role)} and tenant_id = ${d.text(a.tenant)})`,
  ],
  revoke: (t, a) => [`delete from ${t.mapping} where role_name = ${d.text(a.role)} and tenant_id = ${d.text(a.tenant)}`],
  roleName: (role) => role,
};
