import { readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { sql } from 'kysely';
import type { TaskContext } from 'hubflow';
import { PermanentError } from '../server/errors.ts';
import { readingHub } from '../server/hub/db.ts';
import { upstreamItem } from './mapped.ts';
import { HUB_ENTITIES } from '../server/hub/entities.ts';
import { ident } from '../server/hub/schema.ts';
import { TENANT_ID_PATTERN } from '../server/hub/tenant-id.ts';
import { applyScope, type EntityLoad } from './history/apply.ts';
import { extractScope, type ExtractResult, type Reject } from './history/extract.ts';
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

/** The ledger's date of a run: the UTC calendar day of its logical date. */
export const ledgerDate = (ctx: TaskContext) => ctx.logicalDate.toISOString().slice(0, 10);

function scopeDir(ctx: TaskContext, scope: Scope): string {
  return path.join(ctx.connections.stagingDir, 'history', ctx.dagId, `run-${ctx.runId}`, scope === null ? '_global' : encodeURIComponent(scope));
}

/**
 * Every tenant of the hub, largest first (by workers), after the global scope: mapped
 * instances are taken in list order, so the long extracts start first and the night does
 * not end waiting on one big tenant that started last.
 */
export async function listScopes(ctx: TaskContext): Promise<Scope[]> {
  const clients = entities.clients!;
  const workers = entities.workers!;
  const table = (e: typeof clients) => sql.raw(`${ident(ctx.connections.hubSchema)}.${ident(e.table)}`);
  const { rows } = await readingHub(ctx.connections.hubSchema, () =>
    sql<{ tenant: string }>`
    select c.tenant, coalesce(w.n, 0) as n
    from (select distinct ${sql.raw(ident(clients.tenantColumn!))} as tenant from ${table(clients)}) c
    left join (select ${sql.raw(ident(workers.tenantColumn!))} as tenant, count(*) as n from ${table(workers)} group by 1) w using (tenant)
    order by n desc, c.tenant`.execute(ctx.connections.hub()),
  );
  ctx.log.info({ tenants: rows.length }, 'tenants to extract');
  return [null, ...rows.map((r) => r.tenant)];
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
    .where((eb) => (scope === null ? eb.or([eb('tenant_id', 'is', null), sql<boolean>`tenant_id !~ ${TENANT_ID_PATTERN.source}`]) : eb('tenant_id', '=', scope)))
    .execute();
  const saveRejects = async (rejects: Reject[]) => {
    logRejects(ctx, scope, rejects);
    // In slices: one statement's parameters are limited (65,535), and a chunk of short rows can hold more.
    for (let i = 0; i < rejects.length; i += 1000) {
      await store
        .insertInto('rejects')
        .values(rejects.slice(i, i + 1000).map((r) => ({ run_id: ctx.runId, task_id: ctx.taskId, kind: 'extract', entity: r.entity, tenant_id: r.tenant, record_key: r.key, field: r.field, rule: r.rule, reason: r.reason, raw: r.raw })))
        .execute();
    }
  };
  // Snowflake's PUT is given gzip; the PostgreSQL warehouse reads the file where it is.
  const { config } = ctx.connections;
  const compression = config.HUBFLOW_WAREHOUSE === 'snowflake' ? 'gzip' : config.HUBFLOW_STAGING_COMPRESSION;
  const result = await extractScope({ hub: ctx.connections.hub(), schema: ctx.connections.hubSchema, entities, scope, dir: scopeDir(ctx, scope), onRejects: saveRejects, signal: ctx.signal, compression });
  const rejected = result.entities.reduce((n, e) => n + e.rejected, 0);
  ctx.log.info({ scope: scopeLabel(scope), snapshotAt: result.snapshotAt, rows: result.entities.reduce((n, e) => n + e.staged, 0), rejected }, 'snapshot staged');
  return result;
}

/** One log line per batch: counts by entity, field and rule, each with one reason (values masked) as an example. */
function logRejects(ctx: TaskContext, scope: Scope, rejects: Reject[]): void {
  const groups = new Map<string, { entity: string; field: string; rule: string; records: number; example: string }>();
  for (const r of rejects) {
    const id = `${r.entity}.${r.field}.${r.rule}`;
    const g = groups.get(id) ?? groups.set(id, { entity: r.entity, field: r.field, rule: r.rule, records: 0, example: r.reason }).get(id)!;
    g.records++;
  }
  ctx.log.warn({ scope: scopeLabel(scope), rejected: rejects.length, by: [...groups.values()] }, 'records rejected by the record contract (kept in the rejects table)');
}

export interface LoadResult {
  extract: ExtractResult;
  entities: EntityLoad[];
}

export async function loadHistory(ctx: TaskContext<ExtractResult | null>): Promise<LoadResult> {
  const extract = upstreamItem(ctx, 'the extract');
  const loads = await applyScope({
    warehouse: await ctx.connections.warehouse(),
    entities,
    extract,
    runId: ctx.runId,
    logicalDate: ledgerDate(ctx),
    attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}`,
    guard: { maxShare: ctx.connections.config.HUBFLOW_MASS_DELETE_SHARE, minRows: 5 },
  });
  for (const l of loads) ctx.log.info({ scope: scopeLabel(extract.scope), ...l }, `${l.entity}: ${l.status}`);
  return { extract, entities: loads };
}

export async function reconcileHistory(ctx: TaskContext<LoadResult | null>): Promise<EntityReconciliation[]> {
  const { extract, entities: loads } = upstreamItem(ctx, 'the load');
  const loadedNow = new Set(loads.filter((l) => l.status === 'loaded').map((l) => l.entity));
  // A date loaded by an earlier run was reconciled then; today's snapshot is not what it loaded.
  const staged = extract.entities.filter((e) => loadedNow.has(e.entity));
  const results = await reconcileScope({
    warehouse: await ctx.connections.warehouse(),
    entities,
    scope: extract.scope,
    staged,
    attempt: `r${ctx.runId}-m${ctx.mapIndex}-t${ctx.tryNumber}`,
  });
  await saveReconciliations(ctx, results);
  const failed = results.filter((r) => r.status === 'failed');
  const critical = results.filter((r) => r.status === 'escalated');
  const describe = (r: EntityReconciliation) =>
    `${r.entity}/${r.tenant || 'global'}: ${r.missingInTarget} missing in warehouse, ${r.missingInSource} missing in hub, ${r.mismatched} mismatched, ${r.rejected} rejected` +
    `${r.fields.length ? ` (${r.fields.map((f) => `${f.field} ${f.mismatched}`).join(', ')})` : ''}, rate ${(r.mismatchRate * 100).toFixed(3)}%, ${r.severity}`;
  if (failed.length) {
    throw new PermanentError(`reconciliation failed for ${scopeLabel(extract.scope)}: ${failed.map(describe).join('; ')}; see hubflow reconcile report --run ${ctx.runId}`);
  }
  if (critical.length) await ctx.alert(`critical reconciliation mismatch in ${scopeLabel(extract.scope)}: ${critical.map(describe).join('; ')}`, { runId: ctx.runId });
  await pruneStaging(ctx, extract.scope);
  return results;
}

/**
 * Once a scope's load is proven, earlier runs' snapshots of it are no longer needed; this run's
 * stays, so its reconciliation can be repeated (clear the reconcile task) and audited.
 */
async function pruneStaging(ctx: TaskContext, scope: Scope): Promise<void> {
  const runs = path.dirname(path.dirname(scopeDir(ctx, scope)));
  const scopeName = path.basename(scopeDir(ctx, scope));
  for (const dir of await readdir(runs).catch(() => [] as string[])) {
    const id = Number(/^run-(\d+)$/.exec(dir)?.[1]);
    if (id && id < ctx.runId) await rm(path.join(runs, dir, scopeName), { recursive: true, force: true });
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
          logical_date: ledgerDate(ctx),
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
        ...(r.missingInTarget ? [{ field: MISSING_IN_TARGET, field_class: 'record', severity: 'critical' as const, mismatched: r.missingInTarget, sample_keys: r.samples.missingInTarget }] : []),
        ...(r.missingInSource ? [{ field: MISSING_IN_SOURCE, field_class: 'record', severity: 'critical' as const, mismatched: r.missingInSource, sample_keys: r.samples.missingInSource }] : []),
        ...r.fields.map((f) => ({ field: f.field, field_class: f.fieldClass, severity: f.severity, mismatched: f.mismatched, sample_keys: f.sampleKeys })),
      ];
      if (rows.length) await trx.insertInto('reconciliation_fields').values(rows.map((x) => ({ reconciliation_id: id, ...x }))).execute();
    }
  });
}
