import type { Entities } from '../../hub/entities.ts';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import { PermanentError, SkipTaskError } from '../../core/errors.ts';
import type { ExtractResult } from './extract.ts';
import { ledgerTenant, scopeLabel, type Scope } from './layout.ts';
import { DELETE_APPROVALS, LEDGER, schemaDdl } from './sql.ts';

/* The history schema and ledger as a load reads them: what was applied, and the delete guard's approvals. */

const num = (v: unknown) => Number(v ?? 0);

const schemaReady = new WeakMap<Warehouse, Promise<void>>();

/** Creates the history tables once per warehouse and process. */
export function ensureSchema(wh: Warehouse, entities: Entities): Promise<void> {
  let ready = schemaReady.get(wh);
  if (!ready) {
    ready = wh.session(async (s) => {
      for (const statement of schemaDdl(wh, Object.values(entities))) await s.query(statement);
    });
    ready.catch(() => schemaReady.delete(wh));
    schemaReady.set(wh, ready);
  }
  return ready;
}

/** An entity's ledger as one load needs it: the last snapshot applied, and whether its interval has a load. */
export interface LedgerState {
  /** With the live current rows' count and Σ after it (the Σ null in a ledger row from before it was kept). */
  last: { snapshotAt: string; runId: number; currentCount: number; currentSum: string | null } | null;
  intervalLoaded: boolean;
}

interface LedgerRow {
  entity: string;
  snapshot_at: string;
  run_id: unknown;
  this_interval: unknown;
  current_count: unknown;
  current_sum: string | null;
}

/** The query behind ledgerState, for a load that sends it with other statements. */
export function ledgerStateSql(wh: Warehouse, tenant: string, names: string[], interval: { start: string; end: string }): string {
  const d = wh.dialect;
  const ledger = wh.table(LEDGER);
  const scoped = (alias: string) => `${alias}tenant_id = ${d.text(tenant)} and ${alias}entity in (${names.map(d.text).join(', ')})`;
  return `select b.entity, ${d.isoText('b.snapshot_at')} as snapshot_at, b.run_id, b.current_count, b.current_sum,
       case when b.interval_start = ${d.timestamp(interval.start)} and b.interval_end = ${d.timestamp(interval.end)} then 1 else 0 end as this_interval
     from ${ledger} b join (select entity, max(snapshot_at) as last_at from ${ledger} where ${scoped('')} group by entity) m on m.entity = b.entity
     where ${scoped('b.')} and (b.snapshot_at = m.last_at or (b.interval_start = ${d.timestamp(interval.start)} and b.interval_end = ${d.timestamp(interval.end)}))`;
}

/** The ledger state of each entity named, from ledgerStateSql's rows. */
export function ledgerStateOf(rows: unknown[], names: string[]): Map<string, LedgerState> {
  const out = new Map<string, LedgerState>(names.map((n) => [n, { last: null, intervalLoaded: false }]));
  for (const r of rows as LedgerRow[]) {
    const state = out.get(r.entity)!;
    if (num(r.this_interval)) state.intervalLoaded = true;
    if (!state.last || r.snapshot_at > state.last.snapshotAt) {
      state.last = { snapshotAt: r.snapshot_at, runId: num(r.run_id), currentCount: num(r.current_count), currentSum: r.current_sum ?? null };
    }
  }
  return out;
}

export async function ledgerState(
  s: WarehouseSession,
  wh: Warehouse,
  tenant: string,
  names: string[],
  interval: { start: string; end: string },
): Promise<Map<string, LedgerState>> {
  return ledgerStateOf(await s.query(ledgerStateSql(wh, tenant, names, interval)), names);
}

/**
 * A snapshot older than one already applied to the scope is not loaded: its versions would be
 * dated before history already observed, and the newer snapshot holds whatever changed since.
 * That is a deliberate skip, with the reason.
 */
export function assertNotSuperseded(scope: Scope, extract: ExtractResult, ledger: Map<string, LedgerState>): void {
  const { snapshotAt, since } = extract;
  for (const [entity, { last }] of ledger) {
    // The changes since a snapshot the warehouse does not hold would leave out those before it.
    if (since && (!last || last.snapshotAt < since.snapshotAt)) {
      throw new PermanentError(
        `${scopeLabel(scope)}: this incremental extract holds the changes since ${since.snapshotAt}, but the warehouse's ${entity} history ends ${last ? `at ${last.snapshotAt}` : 'before its first load'}; ` +
          'nothing was loaded. Extract the scope again (its watermark is read from the ledger), or load it whole with the nightly DAG',
      );
    }
    if (last && last.snapshotAt > snapshotAt) {
      throw new SkipTaskError(
        `${scopeLabel(scope)}: this snapshot (${snapshotAt}) is older than the one run ${last.runId} applied (${last.snapshotAt}, ${entity}); ` +
          'loading it would rewrite history already observed, and the newer snapshot holds whatever changed since. Nothing was loaded',
      );
    }
  }
}

export interface MassDeleteGuard {
  /** Share of a scope's live rows that may be deleted in one load without an approval. */
  maxShare: number;
  /** Deletes up to this many rows never trip the guard (a tiny tenant losing one worker). */
  minRows: number;
}

export const DEFAULT_GUARD: MassDeleteGuard = { maxShare: 0.02, minRows: 5 };

export async function approved(s: WarehouseSession, wh: Warehouse, entity: string, tenant: string, date: string): Promise<boolean> {
  const d = wh.dialect;
  const rows = await s.query(
    `select 1 as ok from ${wh.table(DELETE_APPROVALS)} where entity in (${d.text(entity)}, '*') and tenant_id = ${d.text(tenant)} and logical_date = ${d.text(date)}`,
  );
  return rows.length > 0;
}

export class MassDeleteError extends PermanentError {}

/** An operator's approval for one load ('*': of every entity) to delete beyond the guard; kept, with who and why. */
export async function approveDeletes(
  wh: Warehouse,
  entities: Entities,
  a: { entity: string; tenant: string; logicalDate: string; approvedBy: string; reason: string },
): Promise<void> {
  await ensureSchema(wh, entities);
  const d = wh.dialect;
  await wh.session(async (s) => {
    await s.query(
      `delete from ${wh.table(DELETE_APPROVALS)} where entity = ${d.text(a.entity)} and tenant_id = ${d.text(a.tenant)} and logical_date = ${d.text(a.logicalDate)}`,
    );
    await s.query(
      `insert into ${wh.table(DELETE_APPROVALS)} (entity, tenant_id, logical_date, approved_by, reason, approved_at)
       values (${d.text(a.entity)}, ${d.text(a.tenant)}, ${d.text(a.logicalDate)}, ${d.text(a.approvedBy)}, ${d.text(a.reason)}, current_timestamp)`,
    );
  });
}

/** The newest snapshot applied to a scope (any of its entities), or null before its first load. */
export async function lastApplied(wh: Warehouse, entities: Entities, scope: Scope): Promise<{ snapshotAt: string; runId: number } | null> {
  await ensureSchema(wh, entities);
  const d = wh.dialect;
  return wh.session(async (s) => {
    const [row] = await s.query<{ snapshot_at: string; run_id: unknown }>(
      `select ${d.isoText('snapshot_at')} as snapshot_at, run_id from ${wh.table(LEDGER)} where tenant_id = ${d.text(ledgerTenant(scope))} order by snapshot_at desc limit 1`,
    );
    return row ? { snapshotAt: row.snapshot_at, runId: num(row.run_id) } : null;
  });
}
