import { sql } from 'kysely';
import { PermanentError } from '../../server/errors.ts';
import type { HubDb } from '../../server/hub/db.ts';
import { columnOf, type Entities } from '../../server/hub/entities.ts';
import { ident, tableName } from '../../server/hub/schema.ts';
import type { FilingPeriod, Jurisdiction } from '../../jurisdictions/types.ts';
import { isDelivered } from './outbox.ts';
import { findPeriod, isDue, periodsAround } from './period.ts';
import type { Selection } from './conf.ts';
import type { FilingItem } from './types.ts';

/**
 * Which filings a cycle makes. Unselected (a scheduled run): every period whose filing window is
 * open at `asOf` (see `opensAt`; the deadline not passed), for every tenant with an employer in
 * the jurisdiction's country, unless the outbox already holds it. Selected (a manual run with
 * jurisdiction, period(s) and/or tenant): exactly what the selection names, delivered or not, so
 * a late or corrected filing can be made on purpose; no period means the ones due at `asOf`.
 */

export interface PlanOptions {
  hub: HubDb;
  schema: string;
  entities: Entities;
  outboxDir: string;
  jurisdictions: readonly Jurisdiction[];
  asOf: Date;
  selection: Selection | null;
  /** Days after a deadline during which an undelivered filing is reported as overdue. */
  overdueDays?: number;
}

export interface Overdue {
  item: FilingItem;
  deadline: string;
}

export interface FilingPlan {
  items: FilingItem[];
  /** Unselected runs only: filings whose deadline passed in the last `overdueDays` without a delivery. */
  overdue: Overdue[];
}

export async function planFilings(options: PlanOptions): Promise<FilingPlan> {
  const { selection, asOf } = options;
  const chosen = selection?.jurisdiction ? options.jurisdictions.filter((j) => j.code === selection.jurisdiction) : options.jurisdictions;
  if (selection?.jurisdiction && !chosen.length) {
    throw new PermanentError(`unknown jurisdiction '${selection.jurisdiction}'; known: ${options.jurisdictions.map((j) => j.code).join(', ')}`);
  }
  for (const id of selection?.periods ?? []) {
    if (!chosen.some((j) => findPeriod(j, id))) throw new PermanentError(`no jurisdiction${selection?.jurisdiction ? ` '${selection.jurisdiction}'` : ''} has a period '${id}'`);
  }
  const employers = await tenantsByCountry(options.hub, options.schema, options.entities);
  const plan: FilingPlan = { items: [], overdue: [] };
  for (const j of chosen) {
    const tenants = (employers.get(j.country) ?? []).filter((t) => !selection?.tenant || t === selection.tenant);
    for (const period of periodsOf(j, options, selection)) {
      for (const tenant of tenants) {
        const item = { jurisdiction: j.code, period: period.id, tenant };
        if (selection) plan.items.push(item);
        else if (isDue(period, asOf)) {
          if (!(await isDelivered(options.outboxDir, item))) plan.items.push(item);
        } else if (period.deadline.getTime() < asOf.getTime() && !(await isDelivered(options.outboxDir, item))) {
          plan.overdue.push({ item, deadline: period.deadline.toISOString() });
        }
      }
    }
  }
  return plan;
}

function periodsOf(j: Jurisdiction, options: PlanOptions, selection: PlanOptions['selection']): FilingPeriod[] {
  // A period id can belong to several calendars ('2025' is EFW2's and T4's): each jurisdiction
  // takes the ids its calendar has (planFilings has checked that every id is someone's).
  if (selection?.periods) return selection.periods.map((id) => findPeriod(j, id)).filter((p) => p !== null);
  const around = periodsAround(j, options.asOf, selection ? 0 : (options.overdueDays ?? 7));
  return selection ? around.filter((p) => isDue(p, options.asOf)) : around;
}

/** Tenants with an employer (org) in each country, from the hub. */
async function tenantsByCountry(hub: HubDb, schema: string, entities: Entities): Promise<Map<string, string[]>> {
  const orgs = entities.orgs;
  if (!orgs?.tenantColumn) throw new PermanentError("the hub entity configuration has no tenant-scoped 'orgs', which filings read");
  const { rows } = await sql<{ tenant: string; country: string }>`select distinct ${sql.raw(ident(orgs.tenantColumn))} as tenant, ${sql.raw(ident(columnOf(orgs, 'country')))} as country from ${sql.raw(tableName(schema, orgs))} order by 1, 2`.execute(hub);
  const out = new Map<string, string[]>();
  for (const r of rows) out.set(r.country, [...(out.get(r.country) ?? []), r.tenant]);
  return out;
}
