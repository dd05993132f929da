import { z } from 'zod';
import type { TaskContext } from 'hubflow';
import { PermanentError } from '../../core/errors.ts';
import { inHubSnapshot, readingHub } from '../../hub/snapshot.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { ident } from '../../hub/sql-names.ts';
import { tenantIdProblem } from '../../hub/tenant-id.ts';
import type { Hub } from '../resources.ts';
import { hubTenantIds } from './extract.ts';
import type { Scope } from './layout.ts';

const entities = HUB_ENTITIES;

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
export async function listScopes(ctx: TaskContext<unknown, { hub: Hub }>): Promise<Scope[]> {
  const selection = parseSelection(ctx.conf);
  const workers = entities.workers!;
  const { db, schema } = ctx.resources.hub;
  const { ids, sizes } = await readingHub(schema, () =>
    inHubSnapshot(db, async (client) => {
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
  // A retry or a clear lists the tenants again: one account per run.
  await ctx.records.clearRejects();
  if (!invalid.length) return;
  const why = invalid.map((i) => `${i.tenant === null ? 'NULL' : JSON.stringify(i.tenant)} (${i.problem})`).join('; ');
  const message = `${invalid.length} tenant${invalid.length > 1 ? 's' : ''} of the hub left out of this run, their rows rejected by the extract: ${why}`;
  ctx.log.warn({ event: 'tenants_left_out', tenants: invalid }, message);
  await ctx.records.reject(
    invalid.map((i) => ({
      kind: 'tenant',
      entity: entities.clients!.name,
      tenant: i.tenant,
      key: JSON.stringify(i.tenant),
      field: 'tenant_id',
      reason: `${i.problem}: no scope, nothing of this tenant is loaded`,
    })),
  );
  await ctx.alert(message, { tenants: invalid });
}
