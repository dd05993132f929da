import { access } from 'node:fs/promises';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import { PermanentError, RetryableError, SkipTaskError } from '../../core/errors.ts';
import type { Entities, Entity } from '../../hub/entities.ts';
import type { ExtractResult, StagedEntity } from './extract.ts';
import { identityFields, ledgerTenant, scopeLabel, stagingColumnNames, type Scope } from './layout.ts';
import { carriedTotals, deletesSeen, loadKeys } from './incremental-apply.ts';
import { classifyChangesSql } from './incremental-sql.ts';
import {
  changeLogSql,
  changesDdl,
  classifySql,
  closeSql,
  currentTotalsSql,
  DELETE_APPROVALS,
  insertSql,
  rejectedKeysDdl,
  SCOPE_LOCKS,
  LEDGER,
  schemaDdl,
  stagingDdl,
  type ApplyParams,
} from './sql.ts';

/**
 * Load: one scope's staged snapshot into history, all entities in one transaction, so a crash
 * anywhere leaves no partial versions and the retry starts clean. DDL (history tables, the
 * attempt's temporary tables) runs before BEGIN because Snowflake commits on DDL.
 */

export interface MassDeleteGuard {
  /** Share of a scope's live rows that may be deleted in one load without an approval. */
  maxShare: number;
  /** Deletes up to this many rows never trip the guard (a tiny tenant losing one worker). */
  minRows: number;
}

export const DEFAULT_GUARD: MassDeleteGuard = { maxShare: 0.02, minRows: 5 };

/**
 * What a load did with one entity: `loaded` (a ledger row: the interval's first load, or a
 * later snapshot of it that changed something), `unchanged` (the interval was loaded and this
 * later snapshot changes nothing), `already_loaded` (this very snapshot was applied before: a
 * retry after a commit).
 */
export interface EntityLoad {
  entity: string;
  status: 'loaded' | 'unchanged' | 'already_loaded';
  inserted: number;
  updated: number;
  deleted: number;
  resurrected: number;
  staged: number;
  currentCount: number;
  currentSum: string;
  /**
   * An incremental load's: the deletes the counts found (see deletesSeen), whether the hub's key
   * set was compared to find them (only when they are not 0, and the extract staged it), and
   * those left live for the next full snapshot to close.
   */
  deletes?: { counted: number | null; keysCompared: boolean; pending: number };
}

export interface ApplyOptions {
  warehouse: Warehouse;
  entities: Entities;
  extract: ExtractResult;
  runId: number;
  /** The run's data interval (ISO instants): what the load covers, the ledger's key with entity and tenant. */
  interval: { start: string; end: string };
  /** Unique per try: names the temporary tables and the Snowflake stage path. */
  attempt: string;
  guard?: MassDeleteGuard;
}

/** Before any history exists, versions start at the hub's own change time, floored here. */
const FIRST_LOAD_FLOOR = '1900-01-01T00:00:00.000000Z';

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

function plusMicrosecond(iso: string): string {
  const [whole, fraction = '000000Z'] = iso.split('.');
  const micros = Number(fraction.slice(0, 6)) + 1;
  if (micros < 1_000_000) return `${whole}.${String(micros).padStart(6, '0')}Z`;
  const next = new Date(Date.parse(`${whole}Z`) + 1000).toISOString().slice(0, 19);
  return `${next}.000000Z`;
}

const num = (v: unknown) => Number(v ?? 0);

/** A UTC calendar day (YYYY-MM-DD) as a data interval: for loads outside a DAG run (benchmarks, tests). */
export function utcDayInterval(day: string): { start: string; end: string } {
  const start = new Date(`${day}T00:00:00.000Z`);
  return { start: start.toISOString(), end: new Date(start.getTime() + 86_400_000).toISOString() };
}

/** The UTC day an interval starts: the ledger's logical_date, and the day delete approvals name. */
export const intervalDay = (interval: { start: string }) => interval.start.slice(0, 10);

/** An entity's ledger as one load needs it: the last snapshot applied, and whether its interval has a load. */
interface LedgerState {
  /** With the live current rows' count and Σ after it (the Σ null in a ledger row from before it was kept). */
  last: { snapshotAt: string; runId: number; currentCount: number; currentSum: string | null } | null;
  intervalLoaded: boolean;
}

async function ledgerState(
  s: WarehouseSession,
  wh: Warehouse,
  tenant: string,
  names: string[],
  interval: { start: string; end: string },
): Promise<Map<string, LedgerState>> {
  const d = wh.dialect;
  const ledger = wh.table(LEDGER);
  const scoped = (alias: string) => `${alias}tenant_id = ${d.text(tenant)} and ${alias}entity in (${names.map(d.text).join(', ')})`;
  const rows = await s.query<{
    entity: string;
    snapshot_at: string;
    run_id: unknown;
    this_interval: unknown;
    current_count: unknown;
    current_sum: string | null;
  }>(
    `select b.entity, ${d.isoText('b.snapshot_at')} as snapshot_at, b.run_id, b.current_count, b.current_sum,
       case when b.interval_start = ${d.timestamp(interval.start)} and b.interval_end = ${d.timestamp(interval.end)} then 1 else 0 end as this_interval
     from ${ledger} b join (select entity, max(snapshot_at) as last_at from ${ledger} where ${scoped('')} group by entity) m on m.entity = b.entity
     where ${scoped('b.')} and (b.snapshot_at = m.last_at or (b.interval_start = ${d.timestamp(interval.start)} and b.interval_end = ${d.timestamp(interval.end)}))`,
  );
  const out = new Map<string, LedgerState>(names.map((n) => [n, { last: null, intervalLoaded: false }]));
  for (const r of rows) {
    const state = out.get(r.entity)!;
    if (num(r.this_interval)) state.intervalLoaded = true;
    if (!state.last || r.snapshot_at > state.last.snapshotAt) {
      state.last = { snapshotAt: r.snapshot_at, runId: num(r.run_id), currentCount: num(r.current_count), currentSum: r.current_sum ?? null };
    }
  }
  return out;
}

/**
 * A snapshot older than one already applied to the scope is not loaded: its versions would be
 * dated before history already observed, and the newer snapshot holds whatever changed since.
 * That is a deliberate skip, with the reason.
 */
function assertNotSuperseded(scope: Scope, extract: ExtractResult, ledger: Map<string, LedgerState>): void {
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

/** A staged file that is no longer there (pruned, or the staging folder lost): nothing was applied. */
export class StagingGoneError extends PermanentError {
  constructor(readonly files: string[]) {
    super(`the staged snapshot is gone (${files.join(', ')}); nothing was applied`);
  }
}

/** Staged files that are missing. */
export async function missingFiles(files: string[]): Promise<string[]> {
  const missing: string[] = [];
  for (const file of files) await access(file).catch(() => missing.push(file));
  return missing;
}

async function approved(s: WarehouseSession, wh: Warehouse, entity: string, tenant: string, date: string): Promise<boolean> {
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

/**
 * Applies one scope's staged extract; returns what changed per entity. Throws SkipTaskError
 * when a newer snapshot of the scope is already applied, StagingGoneError when a staged file
 * is missing.
 */
export async function applyScope(opts: ApplyOptions): Promise<EntityLoad[]> {
  const { warehouse: wh, extract, runId, interval, attempt } = opts;
  const guard = opts.guard ?? DEFAULT_GUARD;
  const scope: Scope = extract.scope;
  const tenant = ledgerTenant(scope);
  const staged = extract.entities.filter((e): e is StagedEntity & { file: string } => e.file !== null);
  await ensureSchema(wh, opts.entities);
  return wh.session(async (s) => {
    const d = wh.dialect;
    const names = staged.map((st) => st.entity);
    // Before any bulk work: a superseded snapshot needs no staging, a missing one cannot load.
    const before = await ledgerState(s, wh, tenant, names, interval);
    assertNotSuperseded(scope, extract, before);
    const gone = await missingFiles(staged.flatMap((st) => [st.file, ...(st.keys ? [st.keys.file] : [])]));
    if (gone.length) throw new StagingGoneError(gone);
    const tag = attempt.replace(/[^a-z0-9]/gi, '_').toLowerCase();
    const work: { e: Entity; st: StagedEntity; p: ApplyParams; deletes: EntityLoad['deletes'] }[] = [];
    // DDL and bulk loads first, outside the transaction.
    for (const st of staged) {
      const e = opts.entities[st.entity];
      if (!e) throw new PermanentError(`staged entity '${st.entity}' is not in the entity configuration`);
      const staging = d.id(`stg_${e.name}_${tag}`.slice(0, 63));
      const changes = d.id(`chg_${e.name}_${tag}`.slice(0, 63));
      await s.query(stagingDdl(d, staging, e));
      await s.query(changesDdl(d, changes, e));
      const loaded = await s.load(staging, stagingColumnNames(e), st.file, `${attempt}/${e.name}`);
      if (loaded !== st.staged) {
        // Never apply (and never infer deletes from) a partial load.
        throw new RetryableError(`${e.name} of ${scopeLabel(scope)}: the warehouse loaded ${loaded} rows of ${st.staged} staged; nothing was applied`);
      }
      await assertStaging(s, wh, e, staging, scope);
      const rejected = await loadRejectedKeys(s, e, st, {
        name: `rej_${e.name}_${tag}`,
        attempt: `${attempt}/${e.name}-rejected`,
        scope,
        unless: 'nothing was applied',
      });
      const p: ApplyParams = { staging, changes, rejected, incremental: !!extract.since, tenant: scope, runId, lo: FIRST_LOAD_FLOOR, hi: extract.snapshotAt };
      // An incremental load counts its deletes first; the key set (staged only for 'every-run') is loaded only when there are any.
      const last = before.get(e.name)?.last;
      const counted = extract.since ? await deletesSeen(s, wh, e, st, p, last?.currentSum != null ? last : null, () => scopeTotals(s, wh, e, scope)) : null;
      const compare = !!st.keys && counted !== 0;
      const keys = compare ? await loadKeys(s, e, st.keys!, { name: `key_${e.name}_${tag}`, attempt: `${attempt}/${e.name}-keys`, scope }) : null;
      const deletes = extract.since ? { counted, keysCompared: compare, pending: !compare && counted !== null && counted > 0 ? counted : 0 } : undefined;
      work.push({ e, st, p: { ...p, keys }, deletes });
    }
    const lock = wh.adapter.scopeLock({ table: wh.table(SCOPE_LOCKS), key: tenant, runId });
    for (const statement of lock.prepare) await s.query(statement);
    await s.query('begin');
    try {
      // Serialises loads of one scope (a task can run twice at once when its worker only seemed
      // dead); the second waits here, then its ledger check sees the first one's rows.
      await s.query(lock.acquire);
      const ledger = await ledgerState(s, wh, tenant, names, interval);
      // Again under the lock: a load of a newer snapshot may have committed meanwhile.
      assertNotSuperseded(scope, extract, ledger);
      const results: EntityLoad[] = [];
      for (const w of work) {
        results.push(
          await applyEntity(s, wh, w, ledger.get(w.e.name)!, {
            interval,
            tenant,
            guard,
            snapshotAt: extract.snapshotAt,
            hubSnapshot: extract.hubSnapshot,
            scope,
          }),
        );
      }
      await s.query('commit');
      return results;
    } catch (err) {
      await s.query('rollback').catch(() => undefined);
      throw err;
    }
  });
}

/**
 * Loads the keys the extract rejected into a temporary table, for the apply and the
 * reconciliation alike; its name, or null when there are none. `unless` says what is not done
 * when the count is short: without all of them, a rejected key would be taken for a delete.
 */
export async function loadRejectedKeys(
  s: WarehouseSession,
  e: Entity,
  st: StagedEntity,
  at: { name: string; attempt: string; scope: Scope; unless: string },
): Promise<string | null> {
  // A snapshot staged before rejected keys were staged has none.
  const keys = st.rejectedKeys ?? null;
  if (!keys) return null;
  const table = s.dialect.id(at.name.slice(0, 63));
  await s.query(rejectedKeysDdl(s.dialect, table, e));
  const loaded = await s.load(
    table,
    identityFields(e).map((f) => f.name),
    keys.file,
    at.attempt,
  );
  if (loaded !== keys.count) {
    throw new RetryableError(`${e.name} of ${scopeLabel(at.scope)}: the warehouse loaded ${loaded} of ${keys.count} rejected keys; ${at.unless}`);
  }
  return table;
}

async function assertStaging(s: WarehouseSession, wh: Warehouse, e: Entity, staging: string, scope: Scope): Promise<void> {
  const d = wh.dialect;
  const ids = stagingColumnNames(e)
    .slice(0, e.key.length + (e.tenantColumn ? 1 : 0))
    .map(d.id);
  // One round trip for both checks: a load is a few dozen statements, each a wait on a busy warehouse.
  const tenantCheck = e.tenantColumn && scope !== null;
  const other = tenantCheck
    ? `, (select count(*) from ${staging} where tenant_id <> ${d.text(scope)}) as other_n, (select min(tenant_id) from ${staging} where tenant_id <> ${d.text(scope)}) as other_t`
    : '';
  const [row] = await s.query<{ n: unknown; other_n?: unknown; other_t?: unknown }>(
    `select (select count(*) from (select ${ids.join(', ')} from ${staging} group by ${ids.join(', ')} having count(*) > 1) x) as n${other}`,
  );
  if (num(row?.n) > 0)
    throw new PermanentError(`${e.name} of ${scopeLabel(scope)}: ${num(row?.n)} keys appear more than once in the snapshot; nothing was applied`);
  if (tenantCheck) {
    if (num(row?.other_n) > 0) {
      throw new PermanentError(
        `${e.name}: ${num(row?.other_n)} staged rows of tenant '${String(row?.other_t)}' in the load of tenant '${scope}'; refusing to load another tenant's rows`,
      );
    }
  }
}

async function applyEntity(
  s: WarehouseSession,
  wh: Warehouse,
  w: { e: Entity; st: StagedEntity; p: ApplyParams; deletes: EntityLoad['deletes'] },
  ledger: LedgerState,
  ctx: { interval: { start: string; end: string }; tenant: string; guard: MassDeleteGuard; snapshotAt: string; hubSnapshot: string | undefined; scope: Scope },
): Promise<EntityLoad> {
  const { e, st } = w;
  const d = wh.dialect;
  const day = intervalDay(ctx.interval);
  const totals = () => scopeTotals(s, wh, e, ctx.scope);
  const nothing = { entity: e.name, inserted: 0, updated: 0, deleted: 0, resurrected: 0, staged: st.staged, ...(w.deletes ? { deletes: w.deletes } : {}) };
  const last = ledger.last;
  // An incremental extract stages the changed rows only: its leak check is the reconciliation's key comparison.
  const leakChecked = <T extends { currentCount: number }>(t: T) => (w.p.incremental ? t : noLeak(e, st, ctx.scope, t));
  if (last && last.snapshotAt === ctx.snapshotAt) return { ...nothing, status: 'already_loaded', ...leakChecked(await totals()) };
  const p = { ...w.p, lo: last ? plusMicrosecond(last.snapshotAt) : w.p.lo };
  const incremental = !!p.incremental;
  await s.query(incremental ? classifyChangesSql(wh, e, p) : classifySql(wh, e, p));
  const counts = await s.query<{ change_type: string; n: unknown }>(`select change_type, count(*) as n from ${p.changes} group by change_type`);
  const count = (type: string) => num(counts.find((c) => c.change_type === type)?.n);
  // A later snapshot of a loaded interval that changes nothing is the same load: no ledger row.
  if (ledger.intervalLoaded && !counts.some((c) => num(c.n) > 0)) return { ...nothing, status: 'unchanged', ...leakChecked(await totals()) };
  const deleted = count('delete');
  if (deleted > ctx.guard.minRows) {
    const before = incremental && last ? last : await totals();
    const share = before.currentCount ? deleted / before.currentCount : 1;
    if (share > ctx.guard.maxShare && !(await approved(s, wh, e.name, ctx.tenant, day))) {
      throw new MassDeleteError(
        `${e.name} of ${scopeLabel(ctx.scope)}: the snapshot of ${ctx.snapshotAt} (interval from ${ctx.interval.start}) deletes ${deleted} of ${before.currentCount} live rows ` +
          `(${(share * 100).toFixed(1)}%, above the ${(ctx.guard.maxShare * 100).toFixed(1)}% guard); nothing was applied. ` +
          `If the hub really lost them: hubflow history approve-deletes --tenant '${ctx.tenant}' --date ${day} --reason '...', then clear the load task`,
      );
    }
  }
  // An incremental load never aggregates the whole scope: the ledger's figures carried by the
  // delta (the reconciliation checks them against the warehouse). A full one counts it after.
  const carried = incremental
    ? await carriedTotals(s, wh, e, p, last?.currentSum != null ? { currentCount: last.currentCount, currentSum: last.currentSum } : totals)
    : null;
  await s.query(changeLogSql(wh, e, p));
  await s.query(closeSql(wh, e, p));
  await s.query(insertSql(wh, e, p));
  const after = carried ?? noLeak(e, st, ctx.scope, await totals());
  // The full load's source Σ is the hub's over the staged rows; an incremental one's, the whole scope's as carried.
  const sourceSum = carried ? carried.currentSum : st.sum;
  await s.query(
    `insert into ${wh.table(LEDGER)} (entity, tenant_id, interval_start, interval_end, logical_date, run_id, snapshot_at, prev_snapshot_at, extracted, staged, rejected, source_sum, inserted, updated, deleted, resurrected, current_count, current_sum, hub_snapshot, load_mode, loaded_at)
     values (${d.text(e.name)}, ${d.text(ctx.tenant)}, ${d.timestamp(ctx.interval.start)}, ${d.timestamp(ctx.interval.end)}, ${d.text(day)}, ${w.p.runId}, ${d.timestamp(ctx.snapshotAt)}, ${last ? d.timestamp(last.snapshotAt) : 'null'},
       ${st.extracted}, ${st.staged}, ${st.rejected}, ${d.text(sourceSum)}, ${count('insert')}, ${count('update')}, ${deleted}, ${count('resurrect')}, ${after.currentCount}, ${d.text(after.currentSum)},
       ${ctx.hubSnapshot ? d.text(ctx.hubSnapshot) : 'null'}, ${d.text(incremental ? 'incremental' : 'full')}, current_timestamp)`,
  );
  return { ...nothing, status: 'loaded', inserted: count('insert'), updated: count('update'), deleted, resurrected: count('resurrect'), ...after };
}

/** The scope's live current rows, counted. */
async function scopeTotals(s: WarehouseSession, wh: Warehouse, e: Entity, scope: Scope): Promise<{ currentCount: number; currentSum: string }> {
  const [row] = await s.query<{ n: unknown; s: unknown }>(currentTotalsSql(wh, e, scope));
  return { currentCount: num(row?.n), currentSum: String(row?.s ?? '0') };
}

/**
 * The leak check, free since the counts are at hand: after the load every staged key has a
 * live current row, so a live row beyond those and the rejected keys kept as they were is a
 * (tenant, key) the hub does not give this scope. The transaction is then rolled back.
 */
function noLeak<T extends { currentCount: number }>(e: Entity, st: StagedEntity, scope: Scope, totals: T): T {
  const kept = st.rejectedKeys?.count ?? 0;
  if (totals.currentCount > st.staged + kept) {
    throw new PermanentError(
      `${e.name} of ${scopeLabel(scope)}: the warehouse would hold ${totals.currentCount} live current rows, but the hub gives this scope ${st.staged} (and ${kept} rejected keys kept as they were); ` +
        `${totals.currentCount - st.staged - kept} rows of keys the hub does not give it. Nothing was applied`,
    );
  }
  return totals;
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
