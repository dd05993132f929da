import { sql, type Kysely } from 'kysely';
import { HUB_ENTITIES, type Entities } from '../hub/entities.ts';
import { ident, tableName } from '../hub/sql-names.ts';

export interface HubCount {
  entity: string;
  /** null for global reference data. */
  tenant: string | null;
  rows: number;
}

/** Rows per entity and tenant; entities whose table does not exist yet are left out. */
export async function hubStats<DB>(db: Kysely<DB>, schema: string, entities: Entities = HUB_ENTITIES): Promise<HubCount[]> {
  const out: HubCount[] = [];
  for (const e of Object.values(entities)) {
    const { rows: exists } = await sql<{ ok: boolean }>`select to_regclass(${tableName(schema, e)}) is not null as ok`.execute(db);
    if (!exists[0]?.ok) continue;
    const tenant = e.tenantColumn ? ident(e.tenantColumn) : 'null::text';
    const { rows } = await sql<{ tenant: string | null; rows: number }>`
      select ${sql.raw(tenant)} as tenant, count(*)::int as rows from ${sql.raw(tableName(schema, e))} group by 1 order by 1`.execute(db);
    out.push(...rows.map((r) => ({ entity: e.name, tenant: r.tenant, rows: r.rows })));
  }
  return out;
}
