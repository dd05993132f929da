import type { Dialect, Warehouse } from '../../warehouse/contract.ts';
import type { Entity } from '../../hub/entities.ts';
import { HASH_FIELD, identityFields, tracked, UPDATED_FIELD, type Field } from './layout.ts';
import { historyTable, on, tenantFilter, type ApplyParams } from './sql.ts';

/*
 * The SQL of an incremental load. The staging table holds only the rows that changed, so a key
 * absent from it is unchanged, never deleted: deletes are the live current rows whose key the
 * hub's key set (p.keys) no longer holds. Everything after the classification (change log,
 * closing, new versions) is the full load's.
 */

/** The key fields without the tenant: the staged key set is one tenant's, so the tenant would only add bytes to move. */
export const keyFields = (e: Entity): Field[] => identityFields(e).filter((f) => f.role === 'key');

/** The table the hub's key set of one scope is loaded into. */
export function keysDdl(d: Dialect, table: string, e: Entity): string {
  return d.createTemp(
    table,
    keyFields(e)
      .map((f) => `${d.id(f.name)} ${d.type(f.type)}`)
      .join(', '),
  );
}

/** Joins a key-set row (k) to a row of the scope (its tenant already chosen). */
export const onKeys = (d: Dialect, e: Entity, k: string, b: string) =>
  keyFields(e)
    .map((f) => `${k}.${d.id(f.name)} = ${b}.${d.id(f.name)}`)
    .join(' and ');

/** The scope's current history rows, live or tombstones. */
const current = (wh: Warehouse, e: Entity, p: ApplyParams) =>
  `(select * from ${wh.table(historyTable(e))} h where ${tenantFilter(wh.dialect, e, 'h', p.tenant)}h.is_current)`;

/**
 * Classifies the changed rows against their current history rows (insert, update, resurrect,
 * or nothing when the hash is equal: a row written again unchanged, or extracted again because
 * its transaction was in flight at the watermark), and, given the hub's key set, adds a delete
 * for every live current row whose key the hub no longer holds (an anti-join: a key the hub
 * holds twice is no delete either). A key rejected today keeps its current version.
 */
export function classifyChangesSql(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  const ids = identityFields(e);
  const last = d.id(ids[ids.length - 1]!.name);
  const t = tracked(e);
  const hi = d.timestamp(p.hi);
  const lo = d.timestamp(p.lo);
  const col = (alias: string) => (f: Field) => `${alias}.${d.id(f.name)}`;
  const columns = `change_type, ${[...ids, ...t].map((f) => d.id(f.name)).join(', ')}, ${t.map((f) => d.id(`o_${f.name}`)).join(', ')}, ${HASH_FIELD}, ${UPDATED_FIELD}, valid_from`;
  return `insert into ${p.changes} (${columns})
select
  case when c.${last} is null then 'insert' when c.is_deleted then 'resurrect' else 'update' end,
  ${[...ids, ...t].map(col('s')).join(', ')},
  ${t.map(col('c')).join(', ')},
  s.${HASH_FIELD}, s.${UPDATED_FIELD},
  least(greatest(coalesce(s.${UPDATED_FIELD}, ${hi}), ${lo}), ${hi})
from ${p.staging} s
left join ${current(wh, e, p)} c on ${on(d, e, 's', 'c')}
where c.${last} is null or c.is_deleted or s.${HASH_FIELD} <> c.${HASH_FIELD}${p.keys ? deletesSql(wh, e, { ...p, keys: p.keys }) : ''}`;
}

/** The deletes of an incremental load: the live current rows whose key the hub's key set lacks. */
function deletesSql(wh: Warehouse, e: Entity, p: ApplyParams & { keys: string }): string {
  const d = wh.dialect;
  const ids = identityFields(e);
  const last = d.id(ids[ids.length - 1]!.name);
  const t = tracked(e);
  const hi = d.timestamp(p.hi);
  const col = (alias: string) => (f: Field) => `${alias}.${d.id(f.name)}`;
  const rejected = p.rejected ? `\nleft join (select distinct ${ids.map((f) => d.id(f.name)).join(', ')} from ${p.rejected}) r on ${on(d, e, 'r', 'c')}` : '';
  return `
union all
select 'delete', ${[...ids, ...t].map(col('c')).join(', ')}, ${t.map(col('c')).join(', ')}, c.${HASH_FIELD}, c.${UPDATED_FIELD}, ${hi}
from ${current(wh, e, p)} c
left join ${p.keys} k on ${onKeys(d, e, 'k', 'c')}${rejected}
where not c.is_deleted and k.${d.id(keyFields(e).at(-1)!.name)} is null${p.rejected ? ` and r.${last} is null` : ''}`;
}

/**
 * The counts that say whether the hub deleted rows since the last load, before any key set is
 * compared: the staged keys without a live current row (what the load adds to the live count),
 * and today's rejected keys without one (the hub holds them, the warehouse does not): two
 * columns, asked with the staging checks.
 */
export function newKeysColumns(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  const ids = identityFields(e);
  const last = d.id(ids[ids.length - 1]!.name);
  const names = ids.map((f) => d.id(f.name)).join(', ');
  const absent = (from: string, alias: string) =>
    `(select count(*) from ${from} ${alias} left join ${current(wh, e, p)} c on ${on(d, e, alias, 'c')} where c.${last} is null or c.is_deleted)`;
  const rejected = p.rejected ? absent(`(select distinct ${names} from ${p.rejected})`, 'r') : '0';
  return `${absent(p.staging, 's')} as added, ${rejected} as rejected_absent`;
}

/**
 * The classified changes per change type, and what they do to the scope's live current rows'
 * Σ int60(row_hash) before they are applied: the new hashes (new_sum) and those of the
 * current rows they replace (old_sum). The ledger carries the whole scope's figures forward
 * by them.
 */
export function changeCountsSql(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  return `select c.change_type, count(*) as n,
  cast(coalesce(sum(${d.int60(`c.${HASH_FIELD}`)}), 0) as text) as new_sum,
  cast(coalesce(sum(${d.int60(`h.${HASH_FIELD}`)}), 0) as text) as old_sum
from ${p.changes} c
left join ${current(wh, e, p)} h on ${on(d, e, 'c', 'h')}
group by c.change_type`;
}
