import path from 'node:path';
import type { TaskContext } from 'hubflow';
import { PermanentError, SkipTaskError } from '../core/errors.ts';
import { privateDir } from '../core/private-files.ts';
import { HUB_ENTITIES } from '../hub/entities.ts';
import type { Hub, Staging } from './resources.ts';
import type { Warehouse } from '../warehouse/contract.ts';
import { upstreamItem } from './mapped.ts';
import { applyScope, intervalDay, lastApplied, MassDeleteError, missingFiles, StagingGoneError, type EntityLoad } from './history/apply.ts';
import { extractScope, type DeleteCadence, type ExtractOptions, type ExtractResult, type Reject, type Watermark } from './history/extract.ts';
import { extractChanges } from './history/incremental-extract.ts';
import { reconcileChanges } from './history/incremental-reconcile.ts';
import { scopeWatermarks } from './history/incremental.ts';
import { recordLoadLatency } from './history/latency.ts';
import { scopeLabel, type Scope } from './history/layout.ts';
import { reconcileScope, type EntityReconciliation } from './history/reconcile.ts';
import { markSnapshot, prunedReason, pruneStaging, resyncConf, scopeDir, type SnapshotPlace } from './history/snapshots.ts';
import { closeVanished, vanishedTenants } from './history/vanished.ts';

import { listScopes } from './history/scopes.ts';

export { listScopes };

/**
 * The tasks of the hub -> warehouse history DAGs: the nightly full snapshot (hub-nightly) and
 * the hourly changes since it (hub-hourly), which share the load and the reconcile task. Each
 * mapped instance handles one scope: one tenant, or (null) the global reference data. Bulk data moves through the staging
 * folder; the tasks pass each other only counts and file paths.
 */

const entities = HUB_ENTITIES;
export const MISSING_IN_TARGET = '(record missing in warehouse)';
export const MISSING_IN_SOURCE = '(record missing in hub)';

/** The run's data interval as the ledger keys it. */
const intervalOf = (ctx: TaskContext) => ({ start: ctx.dataInterval.start.toISOString(), end: ctx.dataInterval.end.toISOString() });

/** This run's place in the staging folder. */
const placeOf = (ctx: TaskContext<unknown, { staging: Staging }>): SnapshotPlace => ({
  stagingDir: ctx.resources.staging.dir,
  dagId: ctx.dagId,
  runId: ctx.runId,
});

export async function extractHistory(ctx: TaskContext<Scope, { hub: Hub; staging: Staging }>): Promise<ExtractResult> {
  return stagedExtract(ctx, ctx.item, extractScope);
}

/** An incremental run's scope: and the snapshot its changes are read since (null: none yet, the scope is extracted whole). */
export interface ScopeSince {
  scope: Scope;
  since: Watermark | null;
}

/** The scopes of an incremental run (as listScopes chooses them), each with its watermark from the warehouse's ledger. */
export async function listIncrementalScopes(ctx: TaskContext<unknown, { hub: Hub; warehouse: Warehouse }>): Promise<ScopeSince[]> {
  const scopes = await listScopes(ctx);
  const marks = await scopeWatermarks(ctx.resources.warehouse, entities, scopes);
  const whole = scopes.filter((s) => !marks.get(s));
  if (whole.length) ctx.log.info({ scopes: whole.map(scopeLabel) }, 'scopes without a watermark are extracted whole');
  return scopes.map((scope) => ({ scope, since: marks.get(scope) ?? null }));
}

type IncrementalContext = TaskContext<ScopeSince, { hub: Hub; staging: Staging }>;

/** The changes of one scope since its watermark, with the hub's count and, for `deletes: 'every-run'`, its keys (see incremental-extract.ts). */
export const extractIncrementalWith =
  (deletes: DeleteCadence) =>
  (ctx: IncrementalContext): Promise<ExtractResult> =>
    stagedExtract(ctx, ctx.item.scope, (opts) => extractChanges({ ...opts, since: ctx.item.since, deletes }));

/** The changes of one scope since its watermark, deletes looked for every run. */
export const extractIncremental = extractIncrementalWith('every-run');

async function stagedExtract(
  ctx: TaskContext<unknown, { hub: Hub; staging: Staging }>,
  scope: Scope,
  extract: (opts: ExtractOptions) => Promise<ExtractResult>,
): Promise<ExtractResult> {
  // A retry starts over: the rejects of an earlier try of this scope go, so extracted = staged + rejected.
  // The global scope's (tenant null) are the rows of no tenant: a null or invalid tenant id.
  await ctx.records.clearRejects({ tenant: scope });
  const saveRejects = async (rejects: Reject[]) => {
    logRejects(ctx, scope, rejects);
    await ctx.records.reject(rejects.map((r) => ({ kind: 'extract', ...r })));
  };
  // Staged in a compression the warehouse's load reads (the staging resource asks the warehouse's adapter).
  const { compression } = ctx.resources.staging;
  const dir = scopeDir(placeOf(ctx), scope);
  // Staged rows hold national ids and bank details: a staging folder an earlier version made 0755
  // is tightened down to this scope's folder before anything is written into it.
  await privateDir(dir, ctx.resources.staging.dir);
  const result = await extract({
    hub: ctx.resources.hub.db,
    schema: ctx.resources.hub.schema,
    entities,
    scope,
    dir,
    onRejects: saveRejects,
    signal: ctx.signal,
    compression,
  });
  await markSnapshot(dir, ctx.runId, result.snapshotAt);
  const rejected = result.entities.reduce((n, e) => n + e.rejected, 0);
  ctx.log.info(
    {
      scope: scopeLabel(scope),
      snapshotAt: result.snapshotAt,
      since: result.since?.snapshotAt,
      rows: result.entities.reduce((n, e) => n + e.staged, 0),
      rejected,
    },
    result.since ? 'changes staged' : 'snapshot staged',
  );
  return result;
}

/**
 * This mapped instance's element of its upstream's results. An upstream instance that was
 * skipped hands on its skip (with its reason); one that failed, a failure (see upstreamItem).
 */
async function upstreamOf<T>(ctx: TaskContext<T | null>, upstreamTask: string, what: string): Promise<T> {
  if (ctx.item === null) {
    const up = await ctx.records.instanceState(upstreamTask, ctx.mapIndex);
    if (up?.state === 'skipped') throw new SkipTaskError(`${what} #${ctx.mapIndex} was skipped: ${up.reason ?? 'no reason given'}`);
  }
  return upstreamItem(ctx, what);
}

/** One log line per batch: counts by entity, field and rule, each with one reason (values masked) as an example. */
function logRejects(ctx: TaskContext, scope: Scope, rejects: Reject[]): void {
  const groups = new Map<string, { entity: string; field: string; rule: string; records: number; example: string }>();
  for (const r of rejects) {
    const id = `${r.entity}.${r.field}.${r.rule}`;
    const g = groups.get(id) ?? groups.set(id, { entity: r.entity, field: r.field, rule: r.rule, records: 0, example: r.reason }).get(id)!;
    g.records++;
  }
  ctx.log.warn(
    { scope: scopeLabel(scope), rejected: rejects.length, by: [...groups.values()] },
    'records rejected by the record contract (kept in the rejects table)',
  );
}

export interface LoadResult {
  extract: ExtractResult;
  entities: EntityLoad[];
}

/** What the load and the reconciliation use. */
type WarehouseContext<Item> = TaskContext<Item, { warehouse: Warehouse; staging: Staging }>;

export async function loadHistory(ctx: WarehouseContext<ExtractResult | null>): Promise<LoadResult> {
  const extract = await upstreamOf(ctx, 'extract', 'the extract');
  try {
    const loads = await applyScope({
      warehouse: ctx.resources.warehouse,
      entities,
      extract,
      runId: ctx.runId,
      interval: intervalOf(ctx),
      attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}`,
      guard: { maxShare: ctx.resources.staging.massDeleteShare, minRows: 5 },
    });
    await recordLoadLatency(ctx, { entities, scope: extract.scope, snapshotAt: extract.snapshotAt, loads });
    for (const l of loads) ctx.log.info({ scope: scopeLabel(extract.scope), ...l }, `${l.entity}: ${l.status}`);
    if (extract.hubTenants) await closeVanishedTenants(ctx, extract, extract.hubTenants);
    return { extract, entities: loads };
  } catch (err) {
    if (err instanceof StagingGoneError) {
      const pruned = await prunedReason(placeOf(ctx), extract.scope, extract.snapshotAt);
      if (pruned) throw new SkipTaskError(pruned);
      throw new PermanentError(
        `${scopeLabel(extract.scope)}: ${err.message}. Re-extract this run's snapshots: hubflow tasks clear ${ctx.runId} --task extract`,
      );
    }
    throw err;
  }
}

/**
 * The leak check of tenants the hub no longer has (see vanished.ts), after the global scope's
 * load, which reads the hub's tenants in its snapshot: each is reported, and its live rows are
 * closed as deleted once approved; until then the load fails, naming the tenants and the
 * command, on every run. The reference data is loaded either way.
 */
async function closeVanishedTenants(ctx: WarehouseContext<unknown>, extract: ExtractResult, hubTenants: string[]): Promise<void> {
  const { warehouse, staging } = ctx.resources;
  const vanished = await vanishedTenants(warehouse, entities, hubTenants);
  if (!vanished.length) return;
  const waiting: string[] = [];
  for (const v of vanished) {
    let outcome: string;
    try {
      const loads = await closeVanished({
        warehouse,
        entities,
        tenant: v.tenant,
        snapshotAt: extract.snapshotAt,
        runId: ctx.runId,
        interval: intervalOf(ctx),
        attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}-gone-${v.tenant}`,
        dir: path.join(scopeDir(placeOf(ctx), null), 'vanished'),
        compression: staging.compression,
      });
      outcome = `its ${loads.reduce((n, l) => n + l.deleted, 0)} live rows were closed as deleted (approved)`;
    } catch (err) {
      if (!(err instanceof MassDeleteError)) throw err;
      outcome = `its ${v.rows} live rows are kept until an operator approves closing them`;
      waiting.push(`'${v.tenant}' (${v.rows} live rows)`);
    }
    await ctx.records.clearRejects({ tenant: v.tenant });
    await ctx.records.reject([
      {
        kind: 'tenant',
        entity: entities.clients!.name,
        tenant: v.tenant,
        key: JSON.stringify(v.tenant),
        field: 'tenant_id',
        rule: 'vanished',
        reason: `tenant vanished from the hub: ${outcome}`,
      },
    ]);
  }
  const message = `${vanished.length} tenant${vanished.length > 1 ? 's' : ''} vanished from the hub but not from the warehouse: ${vanished.map((v) => `'${v.tenant}' (${v.rows} live rows)`).join(', ')}`;
  ctx.log.warn({ event: 'tenants_vanished', tenants: vanished }, message);
  await ctx.alert(message, { tenants: vanished });
  if (waiting.length) {
    const day = intervalDay(intervalOf(ctx));
    throw new PermanentError(
      `${message}; the reference data is loaded, but ${waiting.join(', ')} stay current until approved. If the hub really dropped them: ` +
        `hubflow history approve-deletes --tenant <tenant> --date ${day} --reason '...' for each, then hubflow tasks clear ${ctx.runId} --task load`,
    );
  }
}

export async function reconcileHistory(ctx: WarehouseContext<LoadResult | null>): Promise<EntityReconciliation[]> {
  const { extract, entities: loads } = await upstreamOf(ctx, 'load', 'the load');
  const { warehouse } = ctx.resources;
  const label = scopeLabel(extract.scope);
  // Compared with today's history, a superseded snapshot would report every change since as drift.
  const last = await lastApplied(warehouse, entities, extract.scope);
  if (last && last.snapshotAt > extract.snapshotAt) {
    throw new SkipTaskError(
      `${label}: this run's snapshot (${extract.snapshotAt}) is older than the one run ${last.runId} applied (${last.snapshotAt}), so there is nothing of it left to reconcile; ` +
        `the newer load's reconciliation: hubflow reconcile report --run ${last.runId}`,
    );
  }
  // With the rows of no valid tenant the global scope rejected: nothing loads them, and they must not leave the run green.
  const staged = extract.entities.filter((e) => (e.file !== null && loads.some((l) => l.entity === e.entity)) || (e.file === null && e.rejected > 0));
  const gone = await missingFiles(staged.flatMap((e) => [...(e.file ? [e.file] : []), ...(e.keys ? [e.keys.file] : [])]));
  if (gone.length) {
    const pruned = await prunedReason(placeOf(ctx), extract.scope, extract.snapshotAt);
    if (pruned) throw new SkipTaskError(pruned);
    throw new PermanentError(
      `${label}: the staged snapshot of run ${ctx.runId} is gone (${gone.join(', ')}), and no later clean reconciliation pruned it: the staging folder was lost or cleaned. ` +
        `Re-extract and reconcile this run: hubflow tasks clear ${ctx.runId} --task extract; or load the scope afresh: hubflow dags trigger ${ctx.dagId} --conf '${resyncConf(extract.scope)}'`,
    );
  }
  const options = { warehouse, entities, scope: extract.scope, staged, attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}` };
  // An incremental extract is reconciled over the whole scope from its key set and the ledger's carried totals.
  const results = extract.since
    ? await reconcileChanges({ ...options, snapshotAt: extract.snapshotAt, deletes: extract.deletes })
    : await reconcileScope(options);
  await saveReconciliations(ctx, results);
  for (const r of results.filter((x) => x.pendingDeletes)) {
    ctx.log.warn({ entity: r.entity, tenant: r.tenant, pendingDeletes: r.pendingDeletes }, `${r.entity}/${r.tenant}: ${pendingLabel(r.pendingDeletes!)}`);
  }
  const failed = results.filter((r) => r.status === 'failed');
  const critical = results.filter((r) => r.status === 'escalated');
  const describe = (r: EntityReconciliation) =>
    `${r.entity}/${r.tenant}: ${r.missingInTarget} missing in warehouse, ${r.missingInSource} missing in hub, ${r.mismatched} mismatched, ${r.rejected} rejected` +
    `${r.fields.length ? ` (${r.fields.map((f) => `${f.field} ${f.mismatched}`).join(', ')})` : ''}, rate ${(r.mismatchRate * 100).toFixed(3)}%, ${r.severity}`;
  if (failed.length) {
    throw new PermanentError(`reconciliation failed for ${label}: ${failed.map(describe).join('; ')}; see hubflow reconcile report --run ${ctx.runId}`);
  }
  if (critical.length) await ctx.alert(`critical reconciliation mismatch in ${label}: ${critical.map(describe).join('; ')}`, { runId: ctx.runId });
  else await pruneStaging(placeOf(ctx), extract.scope, extract.snapshotAt);
  return results;
}

/** The reconciliation's wording of the live rows a 'nightly' delete cadence leaves for the full snapshot. */
export const PENDING_DELETES = '(pending deletes: closed by the nightly snapshot)';
const pendingLabel = (n: number) => `pending deletes: ${n} (closed by the nightly snapshot)`;

/**
 * Keeps the reconciliations, whole records missing on one side listed beside the fields, as
 * critical; pending deletes as a field of their own, low, so a count difference is never
 * recorded as a match.
 */
export async function saveReconciliations(ctx: TaskContext, results: EntityReconciliation[]): Promise<void> {
  const logicalDate = intervalDay(intervalOf(ctx));
  const missing = (field: string, n: number, sampleKeys: string[]) =>
    n ? [{ field, fieldClass: 'record', severity: 'critical' as const, mismatched: n, sampleKeys }] : [];
  await ctx.records.reconciliations(
    results.map((r) => ({
      ...r,
      logicalDate,
      fields: [
        ...missing(MISSING_IN_TARGET, r.missingInTarget, r.samples.missingInTarget),
        ...missing(MISSING_IN_SOURCE, r.missingInSource, r.samples.missingInSource),
        ...(r.pendingDeletes ? [{ field: PENDING_DELETES, fieldClass: 'record', severity: 'low' as const, mismatched: r.pendingDeletes, sampleKeys: [] }] : []),
        ...r.fields.map((f) => ({ field: f.field, fieldClass: f.fieldClass, severity: f.severity, mismatched: f.mismatched, sampleKeys: f.sampleKeys })),
      ],
    })),
  );
}
