import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { TaskContext } from 'hubflow';
import { PermanentError, SkipTaskError } from '../core/errors.ts';
import { inHubSnapshot, readingHub } from '../hub/snapshot.ts';
import { assertTenantId, GLOBAL_SCOPE, pathUnder, TENANT_ID_PATTERN, tenantIdProblem } from '../hub/tenant-id.ts';
import { upstreamItem } from './mapped.ts';
import { HUB_ENTITIES } from '../hub/entities.ts';
import { ident } from '../hub/sql-names.ts';
import { applyScope, intervalDay, lastApplied, missingFiles, StagingGoneError, type EntityLoad } from './history/apply.ts';
import { extractScope, hubTenantIds, type ExtractResult, type Reject } from './history/extract.ts';
import { scopeLabel, type Scope } from './history/layout.ts';
import { reconcileScope, type EntityReconciliation } from './history/reconcile.ts';

/**
 * The tasks of the nightly hub -> warehouse history DAG. Each mapped instance handles one
 * scope: one tenant, or (null) the global reference data. Bulk data moves through the staging
 * folder; the tasks pass each other only counts and file paths.
 */

const entities = HUB_ENTITIES;
export const MISSING_IN_TARGET = '(record missing in warehouse)';
export const MISSING_IN_SOURCE = '(record missing in hub)';

/** The run's data interval as the ledger keys it. */
const intervalOf = (ctx: TaskContext) => ({ start: ctx.dataInterval.start.toISOString(), end: ctx.dataInterval.end.toISOString() });

/** The staging folder of all runs of this DAG; every path under it is checked to stay there. */
const runsDir = (ctx: TaskContext) => pathUnder(ctx.connections.stagingDir, 'history', ctx.dagId);
const scopeName = (scope: Scope) => (scope === null ? GLOBAL_SCOPE : assertTenantId(scope));

function scopeDir(ctx: TaskContext, scope: Scope, runId = ctx.runId): string {
  return pathUnder(runsDir(ctx), `run-${runId}`, scopeName(scope));
}

/**
 * Beside a scope's staged files: the snapshot they hold, so pruning knows which are older.
 * Pruning removes the files and keeps this marker, noting which later run's clean
 * reconciliation made them unneeded: a clear of the run's load or reconcile then says so.
 */
const SNAPSHOT_MARKER = 'snapshot.json';

interface SnapshotMarker {
  runId: number;
  snapshotAt: string;
  /** Set when the files were pruned: the run whose newer snapshot of the scope reconciled clean. */
  prunedAfter?: { runId: number; snapshotAt: string };
}

async function readMarker(dir: string): Promise<SnapshotMarker | null> {
  return readFile(path.join(dir, SNAPSHOT_MARKER), 'utf8').then(
    (text) => JSON.parse(text) as SnapshotMarker,
    () => null,
  );
}

/** Why a run's staged snapshot is gone, when a later clean reconciliation pruned it. */
async function prunedReason(ctx: TaskContext, scope: Scope, snapshotAt: string): Promise<string | null> {
  const marker = await readMarker(scopeDir(ctx, scope));
  const after = marker?.snapshotAt === snapshotAt ? marker.prunedAfter : undefined;
  if (!after) return null;
  return (
    `${scopeLabel(scope)}: run ${after.runId} reconciled a newer snapshot of this scope (${after.snapshotAt}) clean, so this run's (${snapshotAt}) ` +
    `is superseded and its staged files were pruned; nothing to do. The newer reconciliation: hubflow reconcile report --run ${after.runId}`
  );
}

/** The conf that re-syncs one scope (see listScopes). */
const resyncConf = (scope: Scope) => JSON.stringify(scope === null ? { tenants: [], global: true } : { tenants: [scope] });

/**
 * The run's conf, as far as it selects scopes: `tenants` loads only those tenants (the
 * operator's re-sync of chosen tenants), leaving every other tenant's history untouched; the
 * global reference data then comes along only with `global: true` (`tenants: []` with it: the
 * reference data alone). Without `tenants`, every tenant and (unless `global: false`) the
 * reference data.
 */
const selectionSchema = z.object({
  tenants: z.array(z.string(), { error: 'a list of tenant ids, e.g. ["acme"]' }).optional(),
  global: z.boolean().optional(),
});

function parseSelection(conf: Readonly<Record<string, unknown>>): { tenants: string[] | null; global: boolean } {
  const parsed = selectionSchema.safeParse(conf);
  if (!parsed.success) throw new PermanentError(`invalid conf: ${parsed.error.issues.map((i) => `${['conf', ...i.path].join('.')}: ${i.message}`).join('; ')}`);
  const tenants = parsed.data.tenants ? [...new Set(parsed.data.tenants)] : null;
  if (tenants?.length === 0 && parsed.data.global !== true) {
    throw new PermanentError('invalid conf: conf.tenants: name at least one tenant, or add "global": true to load the reference data alone');
  }
  for (const t of tenants ?? []) {
    const problem = tenantIdProblem(t);
    if (problem) throw new PermanentError(`conf.tenants: ${problem}`);
  }
  return { tenants, global: parsed.data.global ?? tenants === null };
}

/**
 * Every tenant of the hub, largest first (by workers), after the global scope: mapped
 * instances are taken in list order, so the long extracts start first and the night does
 * not end waiting on one big tenant that started last. A tenant id that breaks the tenant id
 * rule (NULL, '', '.', '..', a path separator...) is no scope: it is left out, logged, alerted
 * and kept in the run's rejects (kind 'tenant'); the extract rejects its rows.
 */
export async function listScopes(ctx: TaskContext): Promise<Scope[]> {
  const selection = parseSelection(ctx.conf);
  const workers = entities.workers!;
  const schema = ctx.connections.hubSchema;
  const { ids, sizes } = await readingHub(schema, () =>
    inHubSnapshot(ctx.connections.hub(), async (client) => {
      const { rows } = await client.query<{ tenant: string; n: string }>(
        `select ${ident(workers.tenantColumn!)}::text as tenant, count(*) as n from ${ident(schema)}.${ident(workers.table)} where ${ident(workers.tenantColumn!)} is not null group by 1`,
      );
      return { ids: await hubTenantIds(client, schema, entities), sizes: new Map(rows.map((r) => [r.tenant, Number(r.n)])) };
    }),
  );
  const rows = ids
    .map((tenant) => ({ tenant, n: tenant === null ? 0 : (sizes.get(tenant) ?? 0) }))
    .sort((a, b) => b.n - a.n || String(a.tenant).localeCompare(String(b.tenant)));
  const valid = rows.map((r) => r.tenant).filter((t): t is string => tenantIdProblem(t) === null);
  const invalid = rows.flatMap((r) => {
    const problem = tenantIdProblem(r.tenant);
    return problem ? [{ tenant: r.tenant, problem }] : [];
  });
  await reportLeftOut(ctx, invalid);
  if (selection.tenants) {
    const known = new Set(valid);
    const unknown = selection.tenants.filter((t) => !known.has(t));
    if (unknown.length) {
      const some = valid.slice(0, 20).join(', ') + (valid.length > 20 ? `, ... (${valid.length} in all)` : '');
      throw new PermanentError(
        `conf.tenants: ${unknown.map((t) => `'${t}'`).join(', ')} ${unknown.length > 1 ? 'are not tenants' : 'is not a tenant'} of the hub (no rows in any of its tables); its tenants: ${some || 'none'}`,
      );
    }
  }
  const tenants = selection.tenants ? valid.filter((t) => selection.tenants!.includes(t)) : valid;
  ctx.log.info({ tenants: tenants.length, global: selection.global, selected: selection.tenants !== null }, 'tenants to extract');
  return [...(selection.global ? [null] : []), ...tenants];
}

async function reportLeftOut(ctx: TaskContext, invalid: { tenant: string | null; problem: string }[]): Promise<void> {
  const store = ctx.connections.store;
  // A retry or a clear lists the tenants again: one account per run.
  await store.deleteFrom('rejects').where('run_id', '=', ctx.runId).where('task_id', '=', ctx.taskId).execute();
  if (!invalid.length) return;
  const why = invalid.map((i) => `${i.tenant === null ? 'NULL' : JSON.stringify(i.tenant)} (${i.problem})`).join('; ');
  const message = `${invalid.length} tenant${invalid.length > 1 ? 's' : ''} of the hub left out of this run, their rows rejected by the extract: ${why}`;
  ctx.log.warn({ event: 'tenants_left_out', tenants: invalid }, message);
  await store
    .insertInto('rejects')
    .values(
      invalid.map((i) => ({
        run_id: ctx.runId,
        task_id: ctx.taskId,
        kind: 'tenant',
        entity: entities.clients!.name,
        tenant_id: i.tenant,
        record_key: JSON.stringify(i.tenant),
        field: 'tenant_id',
        reason: `${i.problem}: no scope, nothing of this tenant is loaded`,
        raw: null,
      })),
    )
    .execute();
  await ctx.alert(message, { tenants: invalid });
}

export async function extractHistory(ctx: TaskContext<Scope>): Promise<ExtractResult> {
  const scope = ctx.item;
  const store = ctx.connections.store;
  // A retry starts over: the rejects of an earlier try of this scope go, so extracted = staged + rejected.
  // The global scope's are the rows of no tenant: a null or invalid tenant id.
  await store
    .deleteFrom('rejects')
    .where('run_id', '=', ctx.runId)
    .where('task_id', '=', ctx.taskId)
    .where((eb) => (scope === null ? eb.or([eb('tenant_id', 'is', null), eb('tenant_id', '!~', TENANT_ID_PATTERN.source)]) : eb('tenant_id', '=', scope)))
    .execute();
  const saveRejects = async (rejects: Reject[]) => {
    logRejects(ctx, scope, rejects);
    // In slices: one statement's parameters are limited (65,535), and a chunk of short rows can hold more.
    for (let i = 0; i < rejects.length; i += 1000) {
      await store
        .insertInto('rejects')
        .values(
          rejects.slice(i, i + 1000).map((r) => ({
            run_id: ctx.runId,
            task_id: ctx.taskId,
            kind: 'extract',
            entity: r.entity,
            tenant_id: r.tenant,
            record_key: r.key,
            field: r.field,
            rule: r.rule,
            reason: r.reason,
            raw: r.raw,
          })),
        )
        .execute();
    }
  };
  // Snowflake's PUT is given gzip; the PostgreSQL warehouse reads the file where it is.
  const { config } = ctx.connections;
  const compression = config.HUBFLOW_WAREHOUSE === 'snowflake' ? 'gzip' : config.HUBFLOW_STAGING_COMPRESSION;
  const dir = scopeDir(ctx, scope);
  const result = await extractScope({
    hub: ctx.connections.hub(),
    schema: ctx.connections.hubSchema,
    entities,
    scope,
    dir,
    onRejects: saveRejects,
    signal: ctx.signal,
    compression,
  });
  const marker: SnapshotMarker = { runId: ctx.runId, snapshotAt: result.snapshotAt };
  await writeFile(path.join(dir, SNAPSHOT_MARKER), JSON.stringify(marker));
  const rejected = result.entities.reduce((n, e) => n + e.rejected, 0);
  ctx.log.info(
    { scope: scopeLabel(scope), snapshotAt: result.snapshotAt, rows: result.entities.reduce((n, e) => n + e.staged, 0), rejected },
    'snapshot staged',
  );
  return result;
}

/**
 * This mapped instance's element of its upstream's results. An upstream instance that was
 * skipped hands on its skip (with its reason); one that failed, a failure (see upstreamItem).
 */
async function upstreamOf<T>(ctx: TaskContext<T | null>, upstreamTask: string, what: string): Promise<T> {
  if (ctx.item === null) {
    const up = await ctx.connections.store
      .selectFrom('task_instances')
      .select(['state', 'error'])
      .where('run_id', '=', ctx.runId)
      .where('task_id', '=', upstreamTask)
      .where('map_index', '=', ctx.mapIndex)
      .executeTakeFirst();
    if (up?.state === 'skipped')
      throw new SkipTaskError(`${what} #${ctx.mapIndex} was skipped: ${(up.error as { message?: string } | null)?.message ?? 'no reason given'}`);
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

export async function loadHistory(ctx: TaskContext<ExtractResult | null>): Promise<LoadResult> {
  const extract = await upstreamOf(ctx, 'extract', 'the extract');
  try {
    const loads = await applyScope({
      warehouse: await ctx.connections.warehouse(),
      entities,
      extract,
      runId: ctx.runId,
      interval: intervalOf(ctx),
      attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}`,
      guard: { maxShare: ctx.connections.config.HUBFLOW_MASS_DELETE_SHARE, minRows: 5 },
    });
    for (const l of loads) ctx.log.info({ scope: scopeLabel(extract.scope), ...l }, `${l.entity}: ${l.status}`);
    return { extract, entities: loads };
  } catch (err) {
    if (err instanceof StagingGoneError) {
      const pruned = await prunedReason(ctx, extract.scope, extract.snapshotAt);
      if (pruned) throw new SkipTaskError(pruned);
      throw new PermanentError(
        `${scopeLabel(extract.scope)}: ${err.message}. Re-extract this run's snapshots: hubflow tasks clear ${ctx.runId} --task extract`,
      );
    }
    throw err;
  }
}

export async function reconcileHistory(ctx: TaskContext<LoadResult | null>): Promise<EntityReconciliation[]> {
  const { extract, entities: loads } = await upstreamOf(ctx, 'load', 'the load');
  const warehouse = await ctx.connections.warehouse();
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
  const gone = await missingFiles(staged.flatMap((e) => (e.file ? [e.file] : [])));
  if (gone.length) {
    const pruned = await prunedReason(ctx, extract.scope, extract.snapshotAt);
    if (pruned) throw new SkipTaskError(pruned);
    throw new PermanentError(
      `${label}: the staged snapshot of run ${ctx.runId} is gone (${gone.join(', ')}), and no later clean reconciliation pruned it: the staging folder was lost or cleaned. ` +
        `Re-extract and reconcile this run: hubflow tasks clear ${ctx.runId} --task extract; or load the scope afresh: hubflow dags trigger ${ctx.dagId} --conf '${resyncConf(extract.scope)}'`,
    );
  }
  const results = await reconcileScope({
    warehouse,
    entities,
    scope: extract.scope,
    staged,
    attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}`,
  });
  await saveReconciliations(ctx, results);
  const failed = results.filter((r) => r.status === 'failed');
  const critical = results.filter((r) => r.status === 'escalated');
  const describe = (r: EntityReconciliation) =>
    `${r.entity}/${r.tenant}: ${r.missingInTarget} missing in warehouse, ${r.missingInSource} missing in hub, ${r.mismatched} mismatched, ${r.rejected} rejected` +
    `${r.fields.length ? ` (${r.fields.map((f) => `${f.field} ${f.mismatched}`).join(', ')})` : ''}, rate ${(r.mismatchRate * 100).toFixed(3)}%, ${r.severity}`;
  if (failed.length) {
    throw new PermanentError(`reconciliation failed for ${label}: ${failed.map(describe).join('; ')}; see hubflow reconcile report --run ${ctx.runId}`);
  }
  if (critical.length) await ctx.alert(`critical reconciliation mismatch in ${label}: ${critical.map(describe).join('; ')}`, { runId: ctx.runId });
  else await pruneStaging(ctx, extract.scope, extract.snapshotAt);
  return results;
}

/**
 * Once a scope's snapshot is loaded and reconciled clean, the scope's older snapshots (of any
 * run) are no longer needed: each was applied or superseded, and a clear of its load or
 * reconcile skips, saying so (the marker stays). This run's stays, so its reconciliation can be
 * repeated (clear the reconcile task) and audited, until a later snapshot reconciles clean.
 * A folder without a marker (an extract under way, or broken) goes only if its run is older.
 */
async function pruneStaging(ctx: TaskContext, scope: Scope, snapshotAt: string): Promise<void> {
  for (const dir of await readdir(runsDir(ctx)).catch(() => [] as string[])) {
    const id = Number(/^run-(\d+)$/.exec(dir)?.[1]);
    if (!id || id === ctx.runId) continue;
    const staged = scopeDir(ctx, scope, id);
    const marker = await readMarker(staged);
    if (marker?.prunedAfter || !(marker ? marker.snapshotAt < snapshotAt : id < ctx.runId)) continue;
    for (const file of await readdir(staged).catch(() => [] as string[])) {
      if (file !== SNAPSHOT_MARKER) await rm(path.join(staged, file), { recursive: true, force: true });
    }
    if (marker)
      await writeFile(
        path.join(staged, SNAPSHOT_MARKER),
        JSON.stringify({ ...marker, prunedAfter: { runId: ctx.runId, snapshotAt } } satisfies SnapshotMarker),
      );
    else {
      await rm(staged, { recursive: true, force: true });
      await rmdir(path.join(runsDir(ctx), dir)).catch(() => undefined); // only when it was the run's last scope
    }
  }
}

async function saveReconciliations(ctx: TaskContext, results: EntityReconciliation[]): Promise<void> {
  const store = ctx.connections.store;
  await store.transaction().execute(async (trx) => {
    for (const r of results) {
      await trx.deleteFrom('reconciliations').where('run_id', '=', ctx.runId).where('entity', '=', r.entity).where('tenant_id', '=', r.tenant).execute();
      const { id } = await trx
        .insertInto('reconciliations')
        .values({
          run_id: ctx.runId,
          logical_date: intervalDay(intervalOf(ctx)),
          entity: r.entity,
          tenant_id: r.tenant,
          source_count: r.sourceCount,
          source_sum: r.sourceSum,
          rejected: r.rejected,
          staged_count: r.stagedCount,
          current_count: r.currentCount,
          current_sum: r.currentSum,
          matched: r.matched,
          mismatched: r.mismatched,
          missing_in_target: r.missingInTarget,
          missing_in_source: r.missingInSource,
          mismatch_rate: r.mismatchRate,
          severity: r.severity,
          status: r.status,
        })
        .returning('id')
        .executeTakeFirstOrThrow();
      // Whole records missing on one side are listed beside the fields, as critical.
      const rows = [
        ...(r.missingInTarget
          ? [
              {
                field: MISSING_IN_TARGET,
                field_class: 'record',
                severity: 'critical' as const,
                mismatched: r.missingInTarget,
                sample_keys: r.samples.missingInTarget,
              },
            ]
          : []),
        ...(r.missingInSource
          ? [
              {
                field: MISSING_IN_SOURCE,
                field_class: 'record',
                severity: 'critical' as const,
                mismatched: r.missingInSource,
                sample_keys: r.samples.missingInSource,
              },
            ]
          : []),
        ...r.fields.map((f) => ({ field: f.field, field_class: f.fieldClass, severity: f.severity, mismatched: f.mismatched, sample_keys: f.sampleKeys })),
      ];
      if (rows.length)
        await trx
          .insertInto('reconciliation_fields')
          .values(rows.map((x) => ({ reconciliation_id: id, ...x })))
          .execute();
    }
  });
}
