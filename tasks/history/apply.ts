import { access } from 'node:fs/promises';
import { runAll, type Warehouse, type WarehouseSession } from '../../warehouse/contract.ts';
import { PermanentError, RetryableError } from '../../core/errors.ts';
import type { Entities, Entity } from '../../hub/entities.ts';
import type { ExtractResult, StagedEntity } from './extract.ts';
import { identityFields, ledgerTenant, scopeLabel, stagingColumnNames, type Scope } from './layout.ts';
import { carriedTotals, deletesSeen, loadKeys, type ChangeCount } from './incremental-apply.ts';
import { changeCountsSql, classifyChangesSql, newKeysColumns } from './incremental-sql.ts';
import {
  approved,
  assertNotSuperseded,
  DEFAULT_GUARD,
  ensureSchema,
  ledgerState,
  ledgerStateOf,
  ledgerStateSql,
  MassDeleteError,
  type LedgerState,
  type MassDeleteGuard,
} from './ledger.ts';
import {
  changeLogSql,
  changesDdl,
  classifySql,
  closeSql,
  currentTotalsSql,
  insertSql,
  rejectedKeysDdl,
  SCOPE_LOCKS,
  LEDGER,
  stagingDdl,
  type ApplyParams,
} from './sql.ts';

export { approveDeletes, DEFAULT_GUARD, ensureSchema, lastApplied, MassDeleteError, type MassDeleteGuard } from './ledger.ts';

/**
 * Load: one scope's staged snapshot into history, all entities in one transaction, so a crash
 * anywhere leaves no partial versions and the retry starts clean. DDL (history tables, the
 * attempt's temporary tables) runs before BEGIN because Snowflake commits on DDL.
 */

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
    const work: Work[] = [];
    // DDL and bulk loads first, outside the transaction.
    for (const st of staged) {
      const e = opts.entities[st.entity];
      if (!e) throw new PermanentError(`staged entity '${st.entity}' is not in the entity configuration`);
      const staging = d.id(`stg_${e.name}_${tag}`.slice(0, 63));
      const changes = d.id(`chg_${e.name}_${tag}`.slice(0, 63));
      const base: ApplyParams = {
        staging,
        changes,
        rejected: null,
        incremental: !!extract.since,
        tenant: scope,
        runId,
        lo: FIRST_LOAD_FLOOR,
        hi: extract.snapshotAt,
      };
      // An incremental load counts its deletes first; the key set (staged only for 'every-run') is loaded only when there are any.
      const last = before.get(e.name)?.last;
      const lastTotals = last?.currentSum != null ? { currentCount: last.currentCount, currentSum: last.currentSum } : null;
      const totals = () => scopeTotals(s, wh, e, scope);
      const deletesOf = (counted: number | null, compare: boolean): EntityLoad['deletes'] =>
        extract.since ? { counted, keysCompared: compare, pending: !compare && counted !== null && counted > 0 ? counted : 0 } : undefined;
      if (extract.since && st.staged === 0 && !st.rejectedKeys) {
        // The hub changed none of the entity's rows: no table is made or loaded unless the counts show deletes to look for.
        const counted = await deletesSeen(st, {}, lastTotals, totals);
        if (!st.keys || counted === 0) {
          work.push({ e, st, p: base, deletes: deletesOf(counted, false), lastTotals, empty: true });
          continue;
        }
      }
      await runAll(s, wh, [stagingDdl(d, staging, e), changesDdl(d, changes, e)]);
      const loaded = await s.load(staging, stagingColumnNames(e), st.file, `${attempt}/${e.name}`);
      if (loaded !== st.staged) {
        // Never apply (and never infer deletes from) a partial load.
        throw new RetryableError(`${e.name} of ${scopeLabel(scope)}: the warehouse loaded ${loaded} rows of ${st.staged} staged; nothing was applied`);
      }
      const rejected = await loadRejectedKeys(s, e, st, {
        name: `rej_${e.name}_${tag}`,
        attempt: `${attempt}/${e.name}-rejected`,
        scope,
        unless: 'nothing was applied',
      });
      const p = { ...base, rejected };
      const seen = await assertStaging(s, wh, e, staging, scope, extract.since ? newKeysColumns(wh, e, p) : null);
      const counted = extract.since ? await deletesSeen(st, seen, lastTotals, totals) : null;
      const compare = !!st.keys && counted !== 0;
      const keys = compare ? await loadKeys(s, e, st.keys!, { name: `key_${e.name}_${tag}`, attempt: `${attempt}/${e.name}-keys`, scope }) : null;
      work.push({ e, st, p: { ...p, keys }, deletes: deletesOf(counted, compare), lastTotals, empty: false });
    }
    const lock = wh.adapter.scopeLock({ table: wh.table(SCOPE_LOCKS), key: tenant, runId });
    for (const statement of lock.prepare) await s.query(statement);
    try {
      // The lock serialises loads of one scope (a task can run twice at once when its worker
      // only seemed dead); the second waits there, then its ledger check sees the first one's
      // rows. Again under the lock: a load of a newer snapshot may have committed meanwhile.
      const ledger = ledgerStateOf(await runAll(s, wh, ['begin', lock.acquire, ledgerStateSql(wh, tenant, names, interval)]), names);
      assertNotSuperseded(scope, extract, ledger);
      const results: EntityLoad[] = [];
      const writes: string[] = [];
      for (const w of work) {
        const applied = await applyEntity(s, wh, w, ledger.get(w.e.name)!, {
          interval,
          tenant,
          guard,
          snapshotAt: extract.snapshotAt,
          hubSnapshot: extract.hubSnapshot,
          scope,
        });
        results.push(applied.load);
        writes.push(...applied.writes);
      }
      // Each entity's writes touch its own tables only: they go with the commit, in one round trip where the warehouse allows.
      await runAll(s, wh, [...writes, 'commit']);
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

/**
 * The staging checks (no key twice, no other tenant's rows), in one round trip with `extra`
 * columns asked of the same tables; answers the row.
 */
async function assertStaging(
  s: WarehouseSession,
  wh: Warehouse,
  e: Entity,
  staging: string,
  scope: Scope,
  extra: string | null,
): Promise<Record<string, unknown>> {
  const d = wh.dialect;
  const ids = stagingColumnNames(e)
    .slice(0, e.key.length + (e.tenantColumn ? 1 : 0))
    .map(d.id);
  const tenantCheck = e.tenantColumn && scope !== null;
  const other = tenantCheck
    ? `, (select count(*) from ${staging} where tenant_id <> ${d.text(scope)}) as other_n, (select min(tenant_id) from ${staging} where tenant_id <> ${d.text(scope)}) as other_t`
    : '';
  const [row = {}] = await s.query<Record<string, unknown>>(
    `select (select count(*) from (select ${ids.join(', ')} from ${staging} group by ${ids.join(', ')} having count(*) > 1) x) as n${other}${extra ? `, ${extra}` : ''}`,
  );
  if (num(row.n) > 0)
    throw new PermanentError(`${e.name} of ${scopeLabel(scope)}: ${num(row.n)} keys appear more than once in the snapshot; nothing was applied`);
  if (tenantCheck && num(row.other_n) > 0) {
    throw new PermanentError(
      `${e.name}: ${num(row.other_n)} staged rows of tenant '${String(row.other_t)}' in the load of tenant '${scope}'; refusing to load another tenant's rows`,
    );
  }
  return row;
}

/** One entity's part of a load, prepared before the transaction. */
interface Work {
  e: Entity;
  st: StagedEntity;
  p: ApplyParams;
  deletes: EntityLoad['deletes'];
  /** The last load's live totals, where the ledger kept its Σ. */
  lastTotals: { currentCount: number; currentSum: string } | null;
  /** An incremental entity with no changed row and no delete to compare: nothing staged, nothing to classify. */
  empty: boolean;
}

/**
 * Classifies one entity's changes and checks them; answers what the load does and the
 * statements that write it (change log, closed and new versions, the ledger row), which the
 * caller sends with the commit.
 */
async function applyEntity(
  s: WarehouseSession,
  wh: Warehouse,
  w: Work,
  ledger: LedgerState,
  ctx: { interval: { start: string; end: string }; tenant: string; guard: MassDeleteGuard; snapshotAt: string; hubSnapshot: string | undefined; scope: Scope },
): Promise<{ load: EntityLoad; writes: string[] }> {
  const { e, st } = w;
  const d = wh.dialect;
  const day = intervalDay(ctx.interval);
  const totals = () => scopeTotals(s, wh, e, ctx.scope);
  const nothing = { entity: e.name, inserted: 0, updated: 0, deleted: 0, resurrected: 0, staged: st.staged, ...(w.deletes ? { deletes: w.deletes } : {}) };
  const last = ledger.last;
  // An incremental extract stages the changed rows only: its leak check is the reconciliation's key comparison.
  const leakChecked = <T extends { currentCount: number }>(t: T) => (w.p.incremental ? t : noLeak(e, st, ctx.scope, t));
  if (last && last.snapshotAt === ctx.snapshotAt) return { load: { ...nothing, status: 'already_loaded', ...leakChecked(await totals()) }, writes: [] };
  const p = { ...w.p, lo: last ? plusMicrosecond(last.snapshotAt) : w.p.lo };
  const incremental = !!p.incremental;
  const counts: ChangeCount[] = w.empty
    ? []
    : await runAll<ChangeCount>(s, wh, [
        incremental ? classifyChangesSql(wh, e, p) : classifySql(wh, e, p),
        // An incremental load never aggregates the whole scope: the ledger's figures are carried by the changes' hashes.
        incremental ? changeCountsSql(wh, e, p) : `select change_type, count(*) as n from ${p.changes} group by change_type`,
      ]);
  const count = (type: string) => num(counts.find((c) => c.change_type === type)?.n);
  // A later snapshot of a loaded interval that changes nothing is the same load: no ledger row.
  if (ledger.intervalLoaded && !counts.some((c) => num(c.n) > 0))
    return { load: { ...nothing, status: 'unchanged', ...leakChecked(await totals()) }, writes: [] };
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
  const versions = w.empty ? [] : [changeLogSql(wh, e, p), closeSql(wh, e, p), insertSql(wh, e, p)];
  // A full load counts the scope after writing its versions (and checks it for leaks); an incremental one carries the ledger's figures.
  const after = incremental
    ? await carriedTotals(counts, w.lastTotals ?? totals)
    : noLeak(e, st, ctx.scope, totalsOf((await runAll(s, wh, [...versions.splice(0), currentTotalsSql(wh, e, ctx.scope)]))[0]));
  // The full load's source Σ is the hub's over the staged rows; an incremental one's, the whole scope's as carried.
  const sourceSum = incremental ? after.currentSum : st.sum;
  versions.push(
    `insert into ${wh.table(LEDGER)} (entity, tenant_id, interval_start, interval_end, logical_date, run_id, snapshot_at, prev_snapshot_at, extracted, staged, rejected, source_sum, inserted, updated, deleted, resurrected, current_count, current_sum, hub_snapshot, load_mode, loaded_at)
     values (${d.text(e.name)}, ${d.text(ctx.tenant)}, ${d.timestamp(ctx.interval.start)}, ${d.timestamp(ctx.interval.end)}, ${d.text(day)}, ${w.p.runId}, ${d.timestamp(ctx.snapshotAt)}, ${last ? d.timestamp(last.snapshotAt) : 'null'},
       ${st.extracted}, ${st.staged}, ${st.rejected}, ${d.text(sourceSum)}, ${count('insert')}, ${count('update')}, ${deleted}, ${count('resurrect')}, ${after.currentCount}, ${d.text(after.currentSum)},
       ${ctx.hubSnapshot ? d.text(ctx.hubSnapshot) : 'null'}, ${d.text(incremental ? 'incremental' : 'full')}, current_timestamp)`,
  );
  return {
    load: { ...nothing, status: 'loaded', inserted: count('insert'), updated: count('update'), deleted, resurrected: count('resurrect'), ...after },
    writes: versions,
  };
}

const totalsOf = (row: Record<string, unknown> | undefined) => ({ currentCount: num(row?.n), currentSum: String(row?.s ?? '0') });

/** The scope's live current rows, counted. */
async function scopeTotals(s: WarehouseSession, wh: Warehouse, e: Entity, scope: Scope): Promise<{ currentCount: number; currentSum: string }> {
  return totalsOf((await s.query(currentTotalsSql(wh, e, scope)))[0]);
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
