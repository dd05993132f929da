import type { Dialect, FenceTarget, Warehouse } from '../../warehouse/contract.ts';
import type { Entity } from '../../hub/entities.ts';
import { GLOBAL_SCOPE } from '../../hub/tenant-id.ts';
import { HASH_FIELD, identityFields, snapshotFields, tracked, UPDATED_FIELD, type Field } from './layout.ts';

/**
 * The history contract's SQL, written once for both warehouses: only identifiers, types and a
 * few functions differ (the Dialect). Values the statements need (run id, tenant, instants)
 * are literals escaped by the dialect, so one statement reads the same in a log, in a test
 * and on either warehouse.
 */

export const historyTable = (e: Entity) => `${e.name}_history`;
export const changesTable = (e: Entity) => `${e.name}_changes`;
export const currentView = (e: Entity) => `${e.name}_current`;
export const LEDGER = 'load_batches';
export const DELETE_APPROVALS = 'delete_approvals';
/** One row per scope, updated first in every load's transaction: Snowflake has no advisory locks. */
export const SCOPE_LOCKS = 'load_locks';
/** Which roles read which tenants (see TenantAccess). */
export const TENANT_ACCESS = 'tenant_access';

/** The relations tenant access fences: everything keyed by tenant, and the views over it. */
export function fenceTarget(wh: Warehouse, entities: Entity[]): FenceTarget {
  const probe = wh.table('x');
  const keyed = entities.filter((e) => e.tenantColumn);
  return {
    schema: probe.slice(0, probe.length - wh.dialect.id('x').length - 1),
    mapping: wh.table(TENANT_ACCESS),
    tables: [LEDGER, DELETE_APPROVALS, SCOPE_LOCKS, ...keyed.flatMap((e) => [historyTable(e), changesTable(e)])].map((name) => ({
      name,
      table: wh.table(name),
    })),
    views: keyed.map((e) => wh.table(currentView(e))),
  };
}

export const META = ['valid_from', 'valid_to', 'is_current', 'is_deleted', HASH_FIELD, UPDATED_FIELD, 'run_id', 'closed_by_run_id'];

/** DDL for the shared tables and each entity's history, changes and current view; safe to repeat. */
export function schemaDdl(wh: Warehouse, entities: Entity[]): string[] {
  const d = wh.dialect;
  const ts = d.timestampType;
  const big = d.bigintType;
  const statements = [
    ...d.createSchema(wh.schema),
    // One row per snapshot applied to a scope: the first load of a data interval, and each later
    // snapshot of the same interval that changed something. logical_date is the UTC day the
    // interval starts, for by-day queries and delete approvals.
    `create table if not exists ${wh.table(LEDGER)} (
  entity text not null, tenant_id text not null, interval_start ${ts}, interval_end ${ts}, logical_date date not null, run_id ${big} not null,
  snapshot_at ${ts} not null, prev_snapshot_at ${ts},
  extracted ${big} not null, staged ${big} not null, rejected ${big} not null, source_sum text not null,
  inserted ${big} not null, updated ${big} not null, deleted ${big} not null, resurrected ${big} not null,
  current_count ${big} not null, loaded_at ${ts} not null
)`,
    // A ledger from before interval keys gains the columns (its rows keep them null: the
    // interval of an old row is not known) and loses its key on the date, which a later
    // snapshot of the same interval would break.
    d.addColumn(wh.table(LEDGER), 'interval_start', ts),
    d.addColumn(wh.table(LEDGER), 'interval_end', ts),
    // The watermark of incremental extracts (the hub's pg_current_snapshot() of the load's
    // snapshot), whether the load was a full snapshot or the changes since one, and the live
    // current rows' Σ int60(row_hash) after it, which each incremental load carries forward
    // by its delta and its reconciliation checks against the warehouse.
    d.addColumn(wh.table(LEDGER), 'hub_snapshot', 'text'),
    d.addColumn(wh.table(LEDGER), 'load_mode', 'text'),
    d.addColumn(wh.table(LEDGER), 'current_sum', 'text'),
    ...d.dropKey(wh.table(LEDGER), `${LEDGER}_pkey`),
    ...d.createIndex(wh.table(LEDGER), `${LEDGER}_snapshot`, 'entity, tenant_id, snapshot_at', { unique: true }),
    ...d.createIndex(wh.table(LEDGER), `${LEDGER}_interval`, 'tenant_id, interval_start, interval_end'),
    `create table if not exists ${wh.table(SCOPE_LOCKS)} (tenant_id text not null, locked_at ${ts}, locked_by_run_id ${big})`,
    `create table if not exists ${wh.table(DELETE_APPROVALS)} (
  entity text not null, tenant_id text not null, logical_date date not null,
  approved_by text not null, reason text not null, approved_at ${ts} not null,
  primary key (entity, tenant_id, logical_date)
)`,
    `create table if not exists ${wh.table(TENANT_ACCESS)} (role_name text not null, tenant_id text not null, granted_by text not null, granted_at ${ts} not null)`,
    ...d.createIndex(wh.table(TENANT_ACCESS), `${TENANT_ACCESS}_key`, 'role_name, tenant_id', { unique: true }),
    // The global scope was named '' before it was GLOBAL_SCOPE everywhere. (A Snowflake ledger
    // from before is renamed by hand, once: these statements, on each of the three tables.)
    ...(wh.adapter.rewritesOldRows
      ? [LEDGER, SCOPE_LOCKS, DELETE_APPROVALS].map((t) => `update ${wh.table(t)} set tenant_id = ${d.text(GLOBAL_SCOPE)} where tenant_id = ''`)
      : []),
  ];
  for (const e of entities) {
    const history = wh.table(historyTable(e));
    const identity = identityFields(e);
    const columns = [
      ...identity.map((f) => `${d.id(f.name)} ${d.type(f.type)} not null`),
      ...tracked(e).map((f) => `${d.id(f.name)} ${d.type(f.type)}`),
      `valid_from ${ts} not null`,
      `valid_to ${ts}`,
      `is_current boolean not null`,
      `is_deleted boolean not null`,
      `${HASH_FIELD} char(64) not null`,
      `${UPDATED_FIELD} ${ts}`,
      `run_id ${big} not null`,
      `closed_by_run_id ${big}`,
    ];
    statements.push(`create table if not exists ${history} (\n  ${columns.join(',\n  ')}\n)`);
    // A tracked field added to the configuration arrives as a new nullable column, no reload.
    for (const f of tracked(e)) statements.push(d.addColumn(history, d.id(f.name), d.type(f.type)));
    const ids = identity.map((f) => d.id(f.name)).join(', ');
    statements.push(
      ...d.createIndex(history, `${historyTable(e)}_version`, `${ids}, valid_from`, { unique: true }),
      ...d.createIndex(history, `${historyTable(e)}_current`, ids, { unique: true, where: 'is_current' }),
      ...d.createIndex(history, `${historyTable(e)}_run`, 'run_id'),
    );
    statements.push(
      `create table if not exists ${wh.table(changesTable(e))} (
  ${identity.map((f) => `${d.id(f.name)} ${d.type(f.type)} not null`).join(', ')},
  valid_from ${ts} not null, run_id ${big} not null, change_type text not null,
  column_name text, old_value text, new_value text
)`,
      d.replaceView(wh.table(currentView(e)), `select * from ${history} where is_current and not is_deleted`),
    );
  }
  // Where the fence does not bind the owner, every table is fenced as it is made.
  if (wh.adapter.access.onSchema) statements.push(...wh.adapter.access.fence(fenceTarget(wh, entities)));
  return statements;
}

/** Columns of the staging table, in the staged file's order. */
export function stagingColumns(e: Entity): Field[] {
  return snapshotFields(e);
}

export function stagingDdl(d: Dialect, table: string, e: Entity): string {
  return d.createTemp(
    table,
    stagingColumns(e)
      .map((f) => `${d.id(f.name)} ${f.role === 'row_hash' ? 'char(64)' : d.type(f.type)}`)
      .join(', '),
  );
}

/** Keys of the scope's rejected rows (tenant and key, as staged): the load leaves them as they were. */
export function rejectedKeysDdl(d: Dialect, table: string, e: Entity): string {
  return d.createTemp(
    table,
    identityFields(e)
      .map((f) => `${d.id(f.name)} ${d.type(f.type)}`)
      .join(', '),
  );
}

/** The classified changes of one load: new values, old values (o_*), and where the new version starts. */
export function changesDdl(d: Dialect, table: string, e: Entity): string {
  const cols = [
    'change_type text',
    ...identityFields(e).map((f) => `${d.id(f.name)} ${d.type(f.type)}`),
    ...tracked(e).map((f) => `${d.id(f.name)} ${d.type(f.type)}`),
    ...tracked(e).map((f) => `${d.id(`o_${f.name}`)} ${d.type(f.type)}`),
    `${HASH_FIELD} char(64)`,
    `${UPDATED_FIELD} ${d.timestampType}`,
    `valid_from ${d.timestampType}`,
  ];
  return d.createTemp(table, cols.join(', '));
}

export interface ApplyParams {
  staging: string;
  changes: string;
  /** The table of today's rejected keys, null when there are none. */
  rejected: string | null;
  /** The scope's tenant; null for global reference data. */
  tenant: string | null;
  runId: number;
  /** The instant after the previous snapshot (exclusive bound + 1µs), or a floor for a first load. */
  lo: string;
  /** This snapshot's instant. */
  hi: string;
  /** An incremental load's: the staging table holds the changed rows only, a key absent from it is unchanged. */
  incremental?: boolean;
  /** An incremental load's: the table of the hub's keys of the scope, when deletes are looked for by them. */
  keys?: string | null;
}

export function on(d: Dialect, e: Entity, a: string, b: string): string {
  return identityFields(e)
    .map((f) => `${a}.${d.id(f.name)} = ${b}.${d.id(f.name)}`)
    .join(' and ');
}

export function tenantFilter(d: Dialect, e: Entity, alias: string, tenant: string | null): string {
  return e.tenantColumn && tenant !== null ? `${alias}.tenant_id = ${d.text(tenant)} and ` : '';
}

/**
 * Classifies every key of the scope against its current history row:
 * insert (new key), update (live, hash differs), resurrect (tombstone, key back),
 * delete (live, key gone; only from a complete extract), nothing otherwise. A key rejected
 * today is unknown, not gone: it keeps its current version (no delete, no change row).
 */
export function classifySql(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  const ids = identityFields(e);
  const first = d.id(ids[ids.length - 1]!.name);
  const t = tracked(e);
  const hi = d.timestamp(p.hi);
  const lo = d.timestamp(p.lo);
  const pick = (f: Field) => `case when s.${first} is null then c.${d.id(f.name)} else s.${d.id(f.name)} end`;
  const validFrom = `case when s.${first} is null then ${hi} else least(greatest(coalesce(s.${UPDATED_FIELD}, ${hi}), ${lo}), ${hi}) end`;
  // A join, not a correlated EXISTS: Snowflake evaluates no correlated subquery inside OR.
  const rejectedJoin = p.rejected
    ? `\nleft join (select distinct ${ids.map((f) => d.id(f.name)).join(', ')} from ${p.rejected}) r on ${on(d, e, 'r', 'c')}`
    : '';
  const notRejected = p.rejected ? ` and r.${first} is null` : '';
  return `insert into ${p.changes} (change_type, ${[...ids, ...t].map((f) => d.id(f.name)).join(', ')}, ${t.map((f) => d.id(`o_${f.name}`)).join(', ')}, ${HASH_FIELD}, ${UPDATED_FIELD}, valid_from)
select
  case when c.${first} is null then 'insert' when s.${first} is null then 'delete' when c.is_deleted then 'resurrect' else 'update' end,
  ${ids.map((f) => `coalesce(s.${d.id(f.name)}, c.${d.id(f.name)})`).join(', ')},
  ${t.map(pick).join(', ')},
  ${t.map((f) => `c.${d.id(f.name)}`).join(', ')},
  coalesce(s.${HASH_FIELD}, c.${HASH_FIELD}),
  case when s.${first} is null then c.${UPDATED_FIELD} else s.${UPDATED_FIELD} end,
  ${validFrom}
from ${p.staging} s
full join (select * from ${wh.table(historyTable(e))} h where ${tenantFilter(d, e, 'h', p.tenant)}h.is_current) c on ${on(d, e, 's', 'c')}${rejectedJoin}
where c.${first} is null
   or (s.${first} is null and not c.is_deleted${notRejected})
   or (s.${first} is not null and c.is_deleted)
   or (s.${first} is not null and not c.is_deleted and s.${HASH_FIELD} <> c.${HASH_FIELD})`;
}

/** One change row per changed column of an update; one row (no column) per insert, delete, resurrect. */
export function changeLogSql(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  const ids = identityFields(e).map((f) => d.id(f.name));
  const head = `insert into ${wh.table(changesTable(e))} (${ids.join(', ')}, valid_from, run_id, change_type, column_name, old_value, new_value)`;
  const base = `${ids.map((i) => `c.${i}`).join(', ')}, c.valid_from, ${p.runId}, c.change_type`;
  const whole = `select ${base}, null, null, null from ${p.changes} c where c.change_type <> 'update'`;
  const perColumn = tracked(e).map((f) => {
    const n = d.id(f.name);
    const o = d.id(`o_${f.name}`);
    return `select ${base}, ${d.text(f.name)}, cast(c.${o} as text), cast(c.${n} as text) from ${p.changes} c where c.change_type = 'update' and c.${o} is distinct from c.${n}`;
  });
  return `${head}\n${[whole, ...perColumn].join('\nunion all\n')}`;
}

/** Closes each superseded current row exactly where its successor starts. */
export function closeSql(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  const history = wh.table(historyTable(e));
  return `update ${history} h set valid_to = c.valid_from, is_current = false, closed_by_run_id = ${p.runId}
from ${p.changes} c
where ${tenantFilter(d, e, 'h', p.tenant)}h.is_current and c.change_type <> 'insert' and ${on(d, e, 'h', 'c')}`;
}

/** New versions and tombstones (a tombstone carries the last values). */
export function insertSql(wh: Warehouse, e: Entity, p: ApplyParams): string {
  const d = wh.dialect;
  const cols = [...identityFields(e), ...tracked(e)].map((f) => d.id(f.name));
  return `insert into ${wh.table(historyTable(e))} (${cols.join(', ')}, ${META.join(', ')})
select ${cols.map((c) => `c.${c}`).join(', ')}, c.valid_from, null, true, c.change_type = 'delete', c.${HASH_FIELD}, c.${UPDATED_FIELD}, ${p.runId}, null
from ${p.changes} c`;
}

/** Count and Σ int60(row_hash) of the scope's live current rows: what reconciliation compares. */
export function currentTotalsSql(wh: Warehouse, e: Entity, tenant: string | null): string {
  const d = wh.dialect;
  return `select count(*) as n, cast(coalesce(sum(${d.int60(`v.${HASH_FIELD}`)}), 0) as text) as s
from ${wh.table(currentView(e))} v${e.tenantColumn && tenant !== null ? ` where v.tenant_id = ${d.text(tenant)}` : ''}`;
}
