import type { TaskContext } from 'hubflow';
import { DEFAULT_SLOT } from '../cdc/source.ts';
import { PermanentError, SkipTaskError } from '../core/errors.ts';
import { HUB_ENTITIES } from '../hub/entities.ts';
import type { Warehouse } from '../warehouse/contract.ts';
import { CdcNotSetUpError, reconcileCdc } from './history/cdc-reconcile.ts';
import type { EntityReconciliation } from './history/reconcile.ts';
import { saveReconciliations } from './hub-history.ts';
import type { Hub } from './resources.ts';

/**
 * The nightly proof of the CDC-built history (dags/hub-cdc.ts): the hub in one snapshot against
 * history as of that snapshot, per entity and tenant, recorded like the nightly's
 * reconciliations. Where CDC was never set up the task skips itself and says how to set it up.
 */

/** How long the consumer has to apply everything the hub snapshot holds; run conf `catchUpSeconds` overrides it. */
export const CATCH_UP_SECONDS = 600;

export async function reconcileCdcHistory(ctx: TaskContext<unknown, { hub: Hub; warehouse: Warehouse }>): Promise<EntityReconciliation[]> {
  const conf = (ctx.conf ?? {}) as { catchUpSeconds?: unknown; slot?: unknown };
  const slot = typeof conf.slot === 'string' ? conf.slot : DEFAULT_SLOT;
  const catchUpSeconds = typeof conf.catchUpSeconds === 'number' && conf.catchUpSeconds > 0 ? conf.catchUpSeconds : CATCH_UP_SECONDS;
  let lsn: bigint;
  let moving: number;
  let results: EntityReconciliation[];
  try {
    ({ lsn, moving, results } = await reconcileCdc({
      hub: ctx.resources.hub.db,
      hubSchema: ctx.resources.hub.schema,
      warehouse: ctx.resources.warehouse,
      entities: HUB_ENTITIES,
      slot,
      catchUpMs: catchUpSeconds * 1000,
      signal: ctx.signal,
    }));
  } catch (err) {
    if (err instanceof CdcNotSetUpError) throw new SkipTaskError(`CDC is not set up (${err.message}): run hubflow cdc setup, then hubflow cdc run`);
    throw err;
  }
  await saveReconciliations(ctx, results);
  // `moving`: keys changed after the hub snapshot, compared as of it through their history.
  ctx.log.info({ slot, lsn: String(lsn), moving, scopes: results.length }, 'CDC history reconciled against the hub snapshot');
  const describe = (r: EntityReconciliation) =>
    `${r.entity}/${r.tenant}: ${r.missingInTarget} missing in warehouse${r.samples.missingInTarget.length ? ` (${r.samples.missingInTarget.join(', ')})` : ''}, ` +
    `${r.missingInSource} missing in hub${r.samples.missingInSource.length ? ` (${r.samples.missingInSource.join(', ')})` : ''}, ` +
    `${r.mismatched} differing${r.fields.length ? ` (${r.fields.flatMap((f) => f.sampleKeys).join(', ')})` : ''}, rate ${(r.mismatchRate * 100).toFixed(3)}%`;
  const failed = results.filter((r) => r.status === 'failed');
  if (failed.length) {
    throw new PermanentError(
      `CDC history does not match the hub as of LSN ${lsn}: ${failed.map(describe).join('; ')}; see hubflow reconcile report --run ${ctx.runId}`,
    );
  }
  const critical = results.filter((r) => r.status === 'escalated');
  if (critical.length) await ctx.alert(`critical CDC reconciliation mismatch: ${critical.map(describe).join('; ')}`, { runId: ctx.runId });
  return results;
}
