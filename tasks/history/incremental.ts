import type { Entities } from '../../hub/entities.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { ensureSchema } from './apply.ts';
import type { Watermark } from './extract.ts';
import { inScope, ledgerTenant, type Scope } from './layout.ts';
import { LEDGER } from './sql.ts';

/**
 * Each scope's watermark: where its next incremental extract starts. Per entity the last load
 * the ledger holds (an entity a later snapshot did not change has no row for it), and of those
 * the oldest, so the changes since it cover every entity; null (the scope is loaded whole)
 * while any entity of the scope has no load that kept the hub's snapshot.
 */
export async function scopeWatermarks(wh: Warehouse, entities: Entities, scopes: Scope[]): Promise<Map<Scope, Watermark | null>> {
  await ensureSchema(wh, entities);
  const d = wh.dialect;
  const ledger = wh.table(LEDGER);
  const rows = await wh.session((s) =>
    s.query<{ entity: string; tenant_id: string; snapshot_at: string; hub_snapshot: string | null }>(
      `select b.entity, b.tenant_id, ${d.isoText('b.snapshot_at')} as snapshot_at, b.hub_snapshot from ${ledger} b
       join (select entity, tenant_id, max(snapshot_at) as last_at from ${ledger} group by entity, tenant_id) l
         on l.entity = b.entity and l.tenant_id = b.tenant_id and l.last_at = b.snapshot_at`,
    ),
  );
  const lastOf = new Map(rows.map((r) => [`${r.tenant_id}\u0000${r.entity}`, r]));
  const out = new Map<Scope, Watermark | null>();
  for (const scope of scopes) {
    let mark: Watermark | null = null;
    for (const e of Object.values(entities).filter((x) => inScope(x, scope))) {
      const row = lastOf.get(`${ledgerTenant(scope)}\u0000${e.name}`);
      if (!row?.hub_snapshot) {
        mark = null;
        break;
      }
      if (!mark || row.snapshot_at < mark.snapshotAt) mark = { snapshotAt: row.snapshot_at, hubSnapshot: row.hub_snapshot };
    }
    out.set(scope, mark);
  }
  return out;
}
