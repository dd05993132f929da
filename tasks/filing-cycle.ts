import type { TaskContext } from 'hubflow';
import type { Hub, Outbox, Staging } from './resources.ts';
import { PermanentError } from '../core/errors.ts';
import { readingHub } from '../hub/snapshot.ts';
import { upstreamItem } from './mapped.ts';
import { HUB_ENTITIES } from '../hub/entities.ts';
import { JURISDICTIONS, jurisdiction } from '../jurisdictions/index.ts';
import type { Violation } from '../jurisdictions/types.ts';
import { parseFilingConf } from './filings/conf.ts';
import { periodOrFail } from './filings/period.ts';
import { planFilings, type Refused } from './filings/plan.ts';
import { deliverStep, extractStep, renderStep, validateStep, verifyStep, type DeliverStepResult, type FilingEnv } from './filings/steps.ts';
import { configuredSubmitters, DEMO_SUBMITTERS } from './filings/submitter.ts';
import { spanLatency } from '../core/latency-histogram.ts';
import { filingLabel, type Extracted, type FilingItem, type NothingToFile, type Rendered, type Validated, type Verified } from './filings/types.ts';

/**
 * The tasks of the filing-cycle DAG. `plan` lists the filings; each later task is mapped over
 * the previous one's results, one instance per (jurisdiction, period, tenant), and takes its
 * upstream's result whether it succeeded or not (`all_done`): one tenant's failure never holds
 * back another's filing. `report` closes the cycle and raises the deadline alerts.
 */

/**
 * What the demo runs the cycle with: the demo submitters (EFW2 and T4 need a contact and, for
 * EFW2, a BSO user id, which no hub field holds), files marked as test submissions, and the
 * periods the demo hub's payroll (October to December 2025) covers.
 */
export const DEMO_FILING_CONF = { submitters: DEMO_SUBMITTERS, test: true, period: ['2025', '2025-26-M09'] };

/** What every step of the cycle uses: the staging folder and the outbox (the plan and the extract read the hub too). */
export interface FilingResources {
  staging: Staging;
  outbox: Outbox;
}
export type FilingContext<Item = unknown> = TaskContext<Item, FilingResources>;
type HubContext<Item = unknown> = TaskContext<Item, FilingResources & { hub: Hub }>;

function env(ctx: FilingContext): FilingEnv {
  const conf = parseFilingConf(ctx.conf);
  const { staging, outbox } = ctx.resources;
  return {
    entities: HUB_ENTITIES,
    stagingDir: staging.dir,
    outboxDir: outbox.dir,
    runId: ctx.runId,
    submitters: [conf.submitters, configuredSubmitters(outbox.config)],
    test: conf.test,
    onRejects: (item, violations) => saveRejects(ctx, item, violations),
    signal: ctx.signal,
  };
}

export async function planCycle(ctx: HubContext): Promise<FilingItem[]> {
  const conf = parseFilingConf(ctx.conf);
  // The run's own due time, not the clock: a run re-tried or run late plans what it was due to.
  const asOf = ctx.dataInterval.end;
  const { hub, outbox } = ctx.resources;
  const plan = await readingHub(hub.schema, () =>
    planFilings({
      hub: hub.db,
      schema: hub.schema,
      entities: HUB_ENTITIES,
      outboxDir: outbox.dir,
      jurisdictions: JURISDICTIONS,
      asOf,
      selection: conf.selection,
    }),
  );
  for (const o of plan.overdue) {
    await ctx.alert(`filing OVERDUE: ${filingLabel(o.item)} was due by ${o.deadline} and is not in the outbox`, { ...o.item, deadline: o.deadline });
  }
  await saveRefused(ctx, plan.refused);
  for (const r of plan.refused) ctx.log.warn(r, `filing refused: ${refusedLabel(r)}`);
  ctx.log.info(
    { asOf: asOf.toISOString(), selection: conf.selection, filings: plan.items.length, overdue: plan.overdue.length, refused: plan.refused.length },
    'filings planned',
  );
  if (conf.selection && !plan.items.length)
    ctx.log.warn({ selection: conf.selection }, 'the selection names no filing: no tenant has an employer there, or no period is due');
  return plan.items;
}

export async function extractCycle(ctx: HubContext<FilingItem>): Promise<Extracted | NothingToFile> {
  await clearRejects(ctx, ctx.item);
  const { hub } = ctx.resources;
  const result = await extractStep({ ...env(ctx), hub: hub.db, hubSchema: hub.schema }, ctx.item);
  if ('nothing' in result) ctx.log.info({ ...ctx.item }, `nothing to file: ${result.nothing}`);
  else ctx.log.info({ ...ctx.item, snapshotAt: result.snapshotAt, records: result.records, rejected: result.extractRejected }, 'filing extracted');
  if (!('nothing' in result) && result.extractRejected)
    ctx.log.warn({ ...ctx.item, rejected: result.extractRejected }, "records refused at extract: see the run's rejects");
  return result;
}

export async function validateCycle(ctx: FilingContext<Extracted | NothingToFile | null>): Promise<Validated | NothingToFile> {
  const prev = upstreamItem(ctx, 'the extract');
  if (!('nothing' in prev)) await clearRejects(ctx, prev.item);
  const result = await validateStep(env(ctx), prev);
  if (!('nothing' in result)) ctx.log.info({ ...result.item, valid: result.valid, rejected: result.rejected }, 'filing validated');
  return result;
}

export async function renderCycle(ctx: FilingContext<Validated | NothingToFile | null>): Promise<Rendered | NothingToFile> {
  return renderStep(env(ctx), upstreamItem(ctx, 'the validation'));
}

export async function verifyCycle(ctx: FilingContext<Rendered | NothingToFile | null>): Promise<Verified | NothingToFile> {
  return verifyStep(env(ctx), upstreamItem(ctx, 'the render'));
}

export async function deliverCycle(ctx: FilingContext<Verified | NothingToFile | null>): Promise<DeliverStepResult> {
  const prev = upstreamItem(ctx, 'the verification');
  const result = await deliverStep(env(ctx), prev);
  const label = filingLabel(result.item);
  if (result.status === 'delivered')
    ctx.log.info({ ...result.item, folder: result.folder, records: result.records, rejected: result.rejected }, 'filing delivered');
  if (result.dataCut && result.deliveredAt) {
    // Best effort: the filing is delivered whether or not its latency is kept.
    const span = spanLatency(result.item.jurisdiction, result.item.tenant, result.dataCut, result.deliveredAt);
    await ctx.records.syncLatency([span]).catch((err: Error) => ctx.log.warn({ err }, `sync latency of ${label} not recorded: ${err.message}`));
  }
  if (result.late) await ctx.alert(`filing delivered LATE: ${label}, deadline ${result.deadline}`, { ...result.item, deadline: result.deadline });
  if (result.replacedSha256) {
    await ctx.alert(
      `filing REPLACED: ${label} differs from the one delivered before (sha256 ${result.replacedSha256.slice(0, 12)} -> ${result.sha256!.slice(0, 12)}); if the old one was submitted, the authority needs a correction`,
      { ...result.item },
    );
  }
  return result;
}

export interface CycleReport {
  planned: number;
  delivered: number;
  nothingToFile: number;
  notDelivered: (FilingItem & { deadline: string })[];
  /** Filings not made because the employer's tenant id is invalid (see `planFilings`). */
  refused: Refused[];
}

const refusedLabel = (r: Refused) =>
  `${r.jurisdiction} ${r.period} for employer ${r.orgId}: ${r.problem}; it is not filed until the hub gives the employer a valid tenant id (deadline ${r.deadline})`;

/** The plan's refused filings go to the rejects (kind filing, field tenant_id), where `report` finds them. */
async function saveRefused(ctx: TaskContext<unknown>, refused: Refused[]): Promise<void> {
  await ctx.records.clearRejects();
  await ctx.records.reject(
    refused.map((r) => ({
      kind: 'filing',
      entity: `filing:${r.jurisdiction}`,
      tenant: r.tenant,
      key: r.orgId,
      field: 'tenant_id',
      reason: `tenant: ${r.problem}`,
      raw: JSON.stringify(r),
    })),
  );
}

async function readRefused(ctx: TaskContext<unknown>): Promise<Refused[]> {
  const rows = await ctx.records.rejectsOf('plan', 'tenant_id');
  return rows.map((r) => JSON.parse(r.raw!) as Refused);
}

/**
 * Compares the plan with the deliveries: each filing that did not reach the outbox is alerted
 * with its deadline, as that is what decides how urgent the failure is.
 */
export async function reportCycle(ctx: TaskContext, planned: FilingItem[], results: (DeliverStepResult | null)[]): Promise<CycleReport> {
  const report: CycleReport = { planned: planned.length, delivered: 0, nothingToFile: 0, notDelivered: [], refused: await readRefused(ctx) };
  for (const [i, item] of planned.entries()) {
    const r = results[i];
    if (r?.status === 'delivered') report.delivered++;
    else if (r?.status === 'nothing') report.nothingToFile++;
    else {
      const deadline = periodOrFail(jurisdiction(item.jurisdiction), item.period).deadline.toISOString();
      report.notDelivered.push({ ...item, deadline });
      await ctx.alert(`filing NOT DELIVERED: ${filingLabel(item)}, deadline ${deadline}; see the failed task of map index ${i} in run ${ctx.runId}`, {
        ...item,
        deadline,
        mapIndex: i,
      });
    }
  }
  for (const r of report.refused) await ctx.alert(`filing NOT FILED: ${refusedLabel(r)}`, { ...r });
  ctx.log.info(report, 'filing cycle done');
  // Nothing else fails for a refused filing: the run must not end green while one is not made.
  if (report.refused.length) {
    throw new PermanentError(
      `${report.refused.length} filing${report.refused.length > 1 ? 's' : ''} not made because the employer's tenant id is invalid: ${report.refused.map((r) => `${r.jurisdiction} ${r.period} for employer ${r.orgId} (${r.problem})`).join('; ')}`,
    );
  }
  return report;
}

async function clearRejects(ctx: TaskContext<unknown>, item: FilingItem): Promise<void> {
  // A retried extract or validation replaces the rejects of its earlier try.
  await ctx.records.clearRejects({ entity: `filing:${item.jurisdiction}`, tenant: item.tenant });
}

async function saveRejects(ctx: TaskContext<unknown>, item: FilingItem, violations: (Violation & { raw?: string })[]): Promise<void> {
  await ctx.records.reject(
    violations.map((v) => ({
      kind: 'filing',
      entity: `filing:${item.jurisdiction}`,
      tenant: item.tenant,
      key: v.record,
      field: v.field,
      reason: `${v.rule}: ${v.message}`,
      raw: v.raw ?? JSON.stringify({ period: item.period }),
    })),
  );
}
