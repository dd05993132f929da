import { RetryableError } from '../../core/errors.ts';
import type { Entity } from '../../hub/entities.ts';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import { deltaSql, keyFields, keysDdl, newKeysSql } from './incremental-sql.ts';
import { scopeLabel, type Scope } from './layout.ts';
import type { StagedEntity } from './extract.ts';
import type { ApplyParams } from './sql.ts';

/* What the load does only for an incremental extract (see apply.ts, which calls these). */

/** The live current rows of a scope: count and Σ int60(row_hash). */
interface Totals {
  currentCount: number;
  currentSum: string;
}

const num = (v: unknown) => Number(v ?? 0);

/**
 * Loads the hub's key set of an incremental extract; all of it, or nothing is applied: a key
 * left out would be taken for a delete.
 */
export async function loadKeys(
  s: WarehouseSession,
  e: Entity,
  keys: { file: string; count: number },
  at: { name: string; attempt: string; scope: Scope },
): Promise<string> {
  const table = s.dialect.id(at.name.slice(0, 63));
  await s.query(keysDdl(s.dialect, table, e));
  const loaded = await s.load(
    table,
    keyFields(e).map((f) => f.name),
    keys.file,
    at.attempt,
  );
  if (loaded !== keys.count) {
    throw new RetryableError(`${e.name} of ${scopeLabel(at.scope)}: the warehouse loaded ${loaded} of the hub's ${keys.count} keys; nothing was applied`);
  }
  return table;
}

/** The scope's live current rows after an incremental load: the last load's figures (counted now when it kept no Σ) plus the delta. */
export async function carriedTotals(s: WarehouseSession, wh: Warehouse, e: Entity, p: ApplyParams, before: Totals | (() => Promise<Totals>)): Promise<Totals> {
  const start = typeof before === 'function' ? await before() : before;
  const [delta] = await s.query<{ dn: unknown; ds: unknown }>(deltaSql(wh, e, p));
  return {
    currentCount: start.currentCount + num(delta?.dn),
    currentSum: String(BigInt(start.currentSum) + BigInt(String(delta?.ds ?? '0'))),
  };
}

/**
 * How many rows the hub deleted from the scope since the last load, by counts alone: the live
 * current rows the warehouse would hold after adding the changed rows (the last load's count
 * plus the staged keys without a live row) less the hub's rows in the extract's snapshot (less
 * today's rejects the warehouse never held). Every hub insert arrives as a changed row, and the
 * last reconciliation proved the live keys equal to the hub's, so what is left over is the
 * live keys the hub no longer holds: 0 means no delete, and no key set needs comparing. Null
 * when the extract counted nothing (it predates the counts): the key set decides.
 */
export async function deletesSeen(
  s: WarehouseSession,
  wh: Warehouse,
  e: Entity,
  st: StagedEntity,
  p: ApplyParams,
  last: { currentCount: number } | null,
  totals: () => Promise<{ currentCount: number }>,
): Promise<number | null> {
  if (st.hubCount === undefined) return null;
  const [row] = await s.query<{ added: unknown; rejected_absent: unknown }>(newKeysSql(wh, e, p));
  const live = (last ?? (await totals())).currentCount;
  return live + num(row?.added) - (st.hubCount - num(row?.rejected_absent));
}
