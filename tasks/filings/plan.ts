import { PermanentError } from '../../core/errors.ts';
import type { HubDb } from '../../hub/db.ts';
import { tenantIdProblem } from '../../hub/tenant-id.ts';
import { columnOf, type Entities } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import type { FilingPeriod, Jurisdiction } from '../../jurisdictions/types.ts';
import { isDelivered } from './outbox.ts';
import { findPeriod, isDue, periodsAround } from './period.ts';
import type { Selection } from './conf.ts';
import type { FilingItem } from './types.ts';

/**
 * Which filings a cycle makes. Unselected (a scheduled run): every period whose filing window is
 * open at `asOf` (see `opensAt`; the deadline not passed), for every tenant with an employer in
 * the jurisdiction's country, unless the outbox already holds it. Selected (a manual run with
 * jurisdiction, period(s) and/or tenants): exactly what the selection names, delivered or not, so
 * a late or corrected filing can be made on purpose; no period means the ones due at `asOf`.
 * An employer whose tenant id is null or invalid is never planned (its id would name no folder,
 * or another's) but refused, with the reason, for every period it should have filed.
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

/**
 * A filing that cannot be made because its employer's tenant id is null or invalid (it would
 * name no folder, or another's): never planned, always reported, so it cannot vanish.
 */
export interface Refused {
  jurisdiction: string;
  period: string;
  /** The tenant id as the hub holds it. */
  tenant: string | null;
  orgId: string;
  problem: string;
  deadline: string;
}

export interface FilingPlan {
  items: FilingItem[];
  /** Unselected runs only: filings whose deadline passed in the last `overdueDays` without a delivery. */
  overdue: Overdue[];
  /** Filings due (or overdue) for employers whose tenant id is invalid. */
  refused: Refused[];
}

export async function planFilings(options: PlanOptions): Promise<FilingPlan> {
  const { selection, asOf } = options;
  const chosen = selection?.jurisdiction ? options.jurisdictions.filter((j) => j.code === selection.jurisdiction) : options.jurisdictions;
  if (selection?.jurisdiction && !chosen.length) {
    throw new PermanentError(`unknown jurisdiction '${selection.jurisdiction}'; known: ${options.jurisdictions.map((j) => j.code).join(', ')}`);
  }
  for (const id of selection?.periods ?? []) {
    if (!chosen.some((j) => findPeriod(j, id)))
      throw new PermanentError(`no jurisdiction${selection?.jurisdiction ? ` '${selection.jurisdiction}'` : ''} has a period '${id}'`);
  }
  const employers = await employersByCountry(options.hub, options.schema, options.entities);
  const known = new Set([...employers.values()].flatMap((orgs) => orgs.filter((o) => !o.problem).map((o) => o.tenant!)));
  const unknown = (selection?.tenants ?? []).filter((t) => !known.has(t));
  if (unknown.length) {
    const list = [...known].sort();
    throw new PermanentError(
      `unknown tenant${unknown.length > 1 ? 's' : ''} ${unknown.map((t) => `'${t}'`).join(', ')}: no employer in the hub belongs to ${unknown.length > 1 ? 'them' : 'it'}; tenants with employers: ${list.slice(0, 20).join(', ')}${list.length > 20 ? `, … (${list.length})` : ''}`,
    );
  }
  const plan: FilingPlan = { items: [], overdue: [], refused: [] };
  for (const j of chosen) {
    const orgs = employers.get(j.country) ?? [];
    const tenants = orgs.filter((o) => !o.problem && (!selection?.tenants || selection.tenants.includes(o.tenant!))).map((o) => o.tenant!);
    // Employers whose tenant id is invalid can be named by no selection of tenants.
    const invalid = selection?.tenants ? [] : orgs.filter((o) => o.problem);
    for (const period of periodsOf(j, options, selection)) {
      const due = isDue(period, asOf);
      const late = !due && period.deadline.getTime() < asOf.getTime();
      if (selection || due || late) {
        for (const o of invalid)
          plan.refused.push({
            jurisdiction: j.code,
            period: period.id,
            tenant: o.tenant,
            orgId: o.orgId,
            problem: o.problem!,
            deadline: period.deadline.toISOString(),
          });
      }
      for (const tenant of new Set(tenants)) {
        const item = { jurisdiction: j.code, period: period.id, tenant };
        if (selection) plan.items.push(item);
        else if (due) {
          if (!(await isDelivered(options.outboxDir, item))) plan.items.push(item);
        } else if (late && !(await isDelivered(options.outboxDir, item))) {
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

interface EmployerOrg {
  /** As the hub holds it: possibly null or invalid, which `problem` then says. */
  tenant: string | null;
  orgId: string;
  problem: string | null;
}

/** The employers (orgs) in each country, with their tenant, from the hub. */
async function employersByCountry(hub: HubDb, schema: string, entities: Entities): Promise<Map<string, EmployerOrg[]>> {
  const orgs = entities.orgs;
  if (!orgs?.tenantColumn) throw new PermanentError("the hub entity configuration has no tenant-scoped 'orgs', which filings read");
  const { sql } = await import('kysely');
  const { rows } = await sql<{
    tenant: string | null;
    country: string;
    org_id: string;
  }>`select ${sql.raw(ident(orgs.tenantColumn))} as tenant, ${sql.raw(ident(columnOf(orgs, 'country')))} as country, ${sql.raw(ident(columnOf(orgs, 'org_id')))} as org_id from ${sql.raw(tableName(schema, orgs))} order by 1, 2, 3`.execute(
    hub,
  );
  const out = new Map<string, EmployerOrg[]>();
  for (const r of rows) out.set(r.country, [...(out.get(r.country) ?? []), { tenant: r.tenant, orgId: r.org_id, problem: tenantIdProblem(r.tenant) }]);
  return out;
}
