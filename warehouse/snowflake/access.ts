import { GLOBAL_SCOPE } from '../../hub/tenant-id.ts';
import type { FenceTarget, TenantAccess } from '../contract.ts';
import { snowflakeDialect as d } from './sql.ts';

/**
 * Tenant access on Snowflake: one row access policy on the `tenant_id` of every tenant-keyed
 * table, reading the mapping table with IS_ROLE_IN_SESSION (so a role granted to the reader's
 * role counts, as on PostgreSQL). Views over the tables are filtered by the same policy for
 * whoever queries them. A row access policy binds the tables' owner too, so the grant command
 * maps the role it runs as (the loads' SNOWFLAKE_ROLE) to every tenant ('*').
 */

const POLICY = 'HUBFLOW_TENANT_POLICY';

// Unquoted names are upper-case in Snowflake, and d.id quotes them so: the mapping keeps them alike.
const roleName = (role: string) => role.toUpperCase();

/** The database of a qualified schema `"DB"."SCHEMA"`. */
const databaseOf = (schema: string) => /^("(?:[^"]|"")*")\./.exec(schema)?.[1] ?? schema;

const policyOf = (t: FenceTarget) => `${t.schema}.${d.id(POLICY)}`;

// The argument is not named tenant_id: inside the subquery that would be the mapping's column.
const body = (t: FenceTarget) =>
  `row_tenant = ${d.text(GLOBAL_SCOPE)} or exists (select 1 from ${t.mapping} a where a.tenant_id in (row_tenant, '*') and is_role_in_session(a.role_name))`;

export const snowflakeAccess: TenantAccess = {
  onSchema: false,
  fence: (t) => [
    `insert into ${t.mapping} (role_name, tenant_id, granted_by, granted_at) select current_role(), '*', current_user(), current_timestamp
     where not exists (select 1 from ${t.mapping} where role_name = current_role() and tenant_id = '*')`,
    `create row access policy if not exists ${policyOf(t)} as (row_tenant varchar) returns boolean -> ${body(t)}`,
    // A policy made by an older hubflow gets today's body.
    `alter row access policy ${policyOf(t)} set body -> ${body(t)}`,
  ],
  boundSql: (t) =>
    `select ref_entity_name as name from table(${databaseOf(t.schema)}.information_schema.policy_references(policy_name => ${d.text(policyOf(t))}))`,
  bind: (t, x) => [`alter table ${x.table} add row access policy ${policyOf(t)} on (tenant_id)`],
  grant: (t, a) => [
    `grant usage on database ${databaseOf(t.schema)} to role ${d.id(a.role)}`,
    `grant usage on schema ${t.schema} to role ${d.id(a.role)}`,
    `grant select on all tables in schema ${t.schema} to role ${d.id(a.role)}`,
    `grant select on all views in schema ${t.schema} to role ${d.id(a.role)}`,
    `insert into ${t.mapping} (role_name, tenant_id, granted_by, granted_at) select ${d.text(roleName(a.role))}, ${d.text(a.tenant)}, ${d.text(a.by)}, current_timestamp
     where not exists (select 1 from ${t.mapping} where role_name = ${d.text(roleName(a.role))} and tenant_id = ${d.text(a.tenant)})`,
  ],
  revoke: (t, a) => [`delete from ${t.mapping} where role_name = ${d.text(roleName(a.role))} and tenant_id = ${d.text(a.tenant)}`],
  roleName,
};
