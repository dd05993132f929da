import { PermanentError } from '../../core/errors.ts';
import type { Entities } from '../../hub/entities.ts';
import { GLOBAL_SCOPE, tenantIdProblem } from '../../hub/tenant-id.ts';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import { ensureSchema } from './apply.ts';
import { fenceTarget, TENANT_ACCESS } from './sql.ts';

/**
 * `hubflow warehouse grant|revoke|access`: which database roles read which tenants' history.
 * The warehouse enforces it (row security on PostgreSQL, a row access policy on Snowflake);
 * this only keeps the mapping and makes sure every tenant-keyed relation is fenced.
 */

export interface TenantGrant {
  role: string;
  /** A tenant id, or '*' for every tenant. */
  tenant: string;
}

export interface AccessRow {
  role: string;
  tenant: string;
  grantedBy: string;
  grantedAt: string;
}

const ROLE_NAME = /^[A-Za-z_][A-Za-z0-9_$.-]{0,62}$/;

function checked(g: TenantGrant): TenantGrant {
  if (!ROLE_NAME.test(g.role)) throw new PermanentError(`--role: '${g.role}' is not a role name (a letter or '_', then letters, digits, '_', '$', '.', '-')`);
  if (g.tenant === GLOBAL_SCOPE)
    throw new PermanentError(`tenant '${GLOBAL_SCOPE}': the global reference data is readable by every role that reads the schema`);
  const problem = g.tenant === '*' ? null : tenantIdProblem(g.tenant);
  if (problem) throw new PermanentError(`tenant: ${problem} (or '*' for every tenant)`);
  return g;
}

/** Fences every tenant-keyed relation; binds, where binding twice is an error, only those not yet bound. */
async function fence(s: WarehouseSession, wh: Warehouse, entities: Entities): Promise<void> {
  const access = wh.adapter.access;
  const target = fenceTarget(wh, Object.values(entities));
  for (const statement of access.fence(target)) await s.query(statement);
  const boundSql = access.boundSql(target);
  const bound = new Set(boundSql ? (await s.query<{ name: string }>(boundSql)).map((r) => String(r.name).toUpperCase()) : []);
  for (const table of target.tables) {
    if (bound.has(table.name.toUpperCase())) continue;
    for (const statement of access.bind(target, table)) await s.query(statement);
  }
}

/** Lets `role` read the history of `tenant` (and the global reference data), and fences every relation first. */
export async function grantTenant(wh: Warehouse, entities: Entities, grant: TenantGrant & { by: string }): Promise<void> {
  const g = checked(grant);
  await ensureSchema(wh, entities);
  await wh.session(async (s) => {
    await fence(s, wh, entities);
    for (const statement of wh.adapter.access.grant(fenceTarget(wh, Object.values(entities)), { ...g, by: grant.by })) await s.query(statement);
  });
}

/** Removes the mapping of `role` to `tenant`; false when there was none. The role then reads none of that tenant's rows. */
export async function revokeTenant(wh: Warehouse, entities: Entities, grant: TenantGrant): Promise<boolean> {
  const g = checked(grant);
  const had = (await listAccess(wh, entities)).some((r) => r.role === wh.adapter.access.roleName(g.role) && r.tenant === g.tenant);
  await wh.session(async (s) => {
    for (const statement of wh.adapter.access.revoke(fenceTarget(wh, Object.values(entities)), g)) await s.query(statement);
  });
  return had;
}

/** Every mapping of a role to a tenant, by role and tenant. */
export async function listAccess(wh: Warehouse, entities: Entities): Promise<AccessRow[]> {
  await ensureSchema(wh, entities);
  const d = wh.dialect;
  const rows = await wh.session((s) =>
    s.query<{ role_name: string; tenant_id: string; granted_by: string; granted_at: string }>(
      `select role_name, tenant_id, granted_by, ${d.isoText('granted_at')} as granted_at from ${wh.table(TENANT_ACCESS)} order by role_name, tenant_id`,
    ),
  );
  return rows.map((r) => ({ role: r.role_name, tenant: r.tenant_id, grantedBy: r.granted_by, grantedAt: r.granted_at }));
}
