import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import type { Entities } from '../../hub/entities.ts';
import { GLOBAL_SCOPE, pathUnder, tenantIdProblem } from '../../hub/tenant-id.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { applyScope, ensureSchema, type EntityLoad } from './apply.ts';
import { type Compression, EXTENSION, type StagedEntity } from './extract.ts';
import { inScope } from './layout.ts';
import { LEDGER } from './sql.ts';

/**
 * Tenants the hub no longer has, whose rows the warehouse still holds live: no scope loads
 * them any more, so without this they would stay current for ever. The rule: such a tenant is
 * reported on every run (a reject of kind 'tenant' and an escalation), and its live rows are
 * closed as deleted (tombstones at the global snapshot's instant, change rows, ledger rows)
 * once an operator approves it with `hubflow history approve-deletes`, as for any mass delete:
 * a tenant id lost by a hub bug must not erase a client's history unasked.
 */

export interface VanishedTenant {
  tenant: string;
  /** Live current rows the warehouse holds for it, over every entity. */
  rows: number;
}

/** Tenants with live rows (the ledger's latest current count per entity) that `hubTenants` does not hold. */
export async function vanishedTenants(wh: Warehouse, entities: Entities, hubTenants: readonly string[]): Promise<VanishedTenant[]> {
  await ensureSchema(wh, entities);
  const d = wh.dialect;
  const ledger = wh.table(LEDGER);
  const rows = await wh.session((s) =>
    s.query<{ tenant_id: string; n: unknown }>(
      `select b.tenant_id, sum(b.current_count) as n from ${ledger} b
       join (select entity, tenant_id, max(snapshot_at) as last_at from ${ledger} where tenant_id <> ${d.text(GLOBAL_SCOPE)} group by entity, tenant_id) l
         on l.entity = b.entity and l.tenant_id = b.tenant_id and l.last_at = b.snapshot_at
       group by b.tenant_id having sum(b.current_count) > 0 order by b.tenant_id`,
    ),
  );
  const known = new Set(hubTenants);
  return rows.filter((r) => !known.has(r.tenant_id)).map((r) => ({ tenant: r.tenant_id, rows: Number(r.n) }));
}

const EMPTY: Record<Compression, Buffer> = { none: Buffer.alloc(0), gzip: gzipSync(Buffer.alloc(0)), brotli: brotliCompressSync(Buffer.alloc(0)) };

/**
 * Loads an empty snapshot of the tenant at `snapshotAt`: every live row becomes a tombstone.
 * Any delete at all needs an approval (the mass-delete guard with no allowance), so this
 * throws MassDeleteError, applying nothing, until an operator approves the tenant's day.
 */
export async function closeVanished(o: {
  warehouse: Warehouse;
  entities: Entities;
  tenant: string;
  snapshotAt: string;
  runId: number;
  interval: { start: string; end: string };
  attempt: string;
  /** A folder of the run's staging area for the empty files. */
  dir: string;
  compression: Compression;
}): Promise<EntityLoad[]> {
  const problem = tenantIdProblem(o.tenant);
  if (problem) throw new Error(`vanished tenant ${JSON.stringify(o.tenant)}: ${problem}`);
  const dir = pathUnder(o.dir, o.tenant);
  // As private as any staging folder, though these files hold no row.
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const staged: StagedEntity[] = [];
  for (const e of Object.values(o.entities).filter((x) => inScope(x, o.tenant))) {
    const file = path.join(dir, `${e.name}${EXTENSION[o.compression]}`);
    await writeFile(file, EMPTY[o.compression], { mode: 0o600 });
    staged.push({ entity: e.name, file, extracted: 0, staged: 0, rejected: 0, sum: '0', bytes: 0, rejectedKeys: null });
  }
  return applyScope({
    warehouse: o.warehouse,
    entities: o.entities,
    extract: { scope: o.tenant, snapshotAt: o.snapshotAt, entities: staged },
    runId: o.runId,
    interval: o.interval,
    attempt: o.attempt,
    guard: { maxShare: 0, minRows: 0 },
  });
}
