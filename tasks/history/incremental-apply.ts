import { RetryableError } from '../../core/errors.ts';
import type { Entity } from '../../hub/entities.ts';
import type { WarehouseSession } from '../../warehouse/contract.ts';
import { keyFields, keysDdl } from './incremental-sql.ts';
import { scopeLabel, type Scope } from './layout.ts';
import type { StagedEntity } from './extract.ts';

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

/** One change type's count and hash sums (see changeCountsSql). */
export interface ChangeCount {
  change_type: string;
  n: unknown;
  new_sum?: unknown;
  old_sum?: unknown;
}

/**
 * The scope's live current rows after an incremental load: the last load's figures (counted
 * now when it kept no Σ) plus what the changes add (inserts and resurrections, their hashes;
 * an update's new hash) less what they take away (deletes; the hashes updates and deletes
 * replace).
 */
export async function carriedTotals(counts: ChangeCount[], before: Totals | (() => Promise<Totals>)): Promise<Totals> {
  const start = typeof before === 'function' ? await before() : before;
  let n = start.currentCount;
  let sum = BigInt(start.currentSum);
  for (const c of counts) {
    if (c.change_type === 'insert' || c.change_type === 'resurrect') n += num(c.n);
    if (c.change_type === 'delete') n -= num(c.n);
    else sum += BigInt(String(c.new_sum ?? '0'));
    if (c.change_type === 'update' || c.change_type === 'delete') sum -= BigInt(String(c.old_sum ?? '0'));
  }
  return { currentCount: n, currentSum: String(sum) };
}

/**
 * How many rows the hub deleted from the scope since the last load, by counts alone: the live
 * current rows the warehouse would hold after adding the changed rows (the last load's count
 * plus the staged keys without a live row, `added`) less the hub's rows in the extract's
 * snapshot (less today's rejects the warehouse never held, `rejected_absent`; see
 * newKeysColumns). Every hub insert arrives as a changed row, and the last reconciliation
 * proved the live keys equal to the hub's, so what is left over is the live keys the hub no
 * longer holds: 0 means no delete, and no key set needs comparing. Null when the extract
 * counted nothing (it predates the counts): the key set decides.
 */
export async function deletesSeen(
  st: StagedEntity,
  seen: { added?: unknown; rejected_absent?: unknown },
  last: { currentCount: number } | null,
  totals: () => Promise<{ currentCount: number }>,
): Promise<number | null> {
  if (st.hubCount === undefined) return null;
  const live = (last ?? (await totals())).currentCount;
  return live + num(seen.added) - (st.hubCount - num(seen.rejected_absent));
}
