import type { Engine } from './engine.ts';
import { DEFAULT_WINDOW_MS, measureIntegrations, type IntegrationStatus, type SloCheck } from './integration-sli.ts';

export { parseWindow } from './integration-spec.ts';
export { DEFAULT_WINDOW_MS, measureIntegrations, SLO_NAMES, type IntegrationStatus, type SloCheck } from './integration-sli.ts';

export interface IntegrationCheck {
  statuses: IntegrationStatus[];
  /** 'dag/slo' of each breach this check raised (an SLO already breached is not raised again). */
  alerted: string[];
  /** 'dag/slo' of each breach that ended. */
  recovered: string[];
}

type Checker = Pick<Engine, 'db' | 'dags' | 'escalate' | 'log'>;

/** Opens the breach; true when this call opened it (the partial unique index lets one of many schedulers win). */
async function openBreach(engine: Checker, s: IntegrationStatus, c: SloCheck): Promise<boolean> {
  const row = await engine.db
    .insertInto('integration_breaches')
    .values({ dag_id: s.dag, integration: s.integration, slo: c.slo, detail: c.summary })
    .onConflict((oc) => oc.columns(['dag_id', 'slo']).where('recovered_at', 'is', null).doNothing())
    .returning('id')
    .executeTakeFirst();
  return row !== undefined;
}

async function closeBreach(engine: Checker, s: IntegrationStatus, c: SloCheck): Promise<boolean> {
  const rows = await engine.db
    .updateTable('integration_breaches')
    .set({ recovered_at: new Date() })
    .where('dag_id', '=', s.dag)
    .where('slo', '=', c.slo)
    .where('recovered_at', 'is', null)
    .returning('id')
    .execute();
  return rows.length > 0;
}

/**
 * Measures every integration and escalates each SLO that is newly breached, once: the breach is
 * remembered in the store until the SLO is met again, so a later check (or another scheduler)
 * stays quiet meanwhile, and a breach after a recovery alerts again.
 */
export async function checkIntegrations(engine: Checker, windowMs = DEFAULT_WINDOW_MS): Promise<IntegrationCheck> {
  const statuses = await measureIntegrations(engine.db, engine.dags.dags.values(), windowMs);
  const alerted: string[] = [];
  const recovered: string[] = [];
  for (const s of statuses) {
    for (const c of s.slos) {
      const key = `${s.dag}/${c.slo}`;
      if (!c.met && (await openBreach(engine, s, c))) {
        alerted.push(key);
        await engine.escalate({
          kind: 'slo_breach',
          dagId: s.dag,
          owner: s.owner ?? undefined,
          message: `integration ${s.integration} breaches its ${c.slo} SLO: ${c.summary}`,
          details: { integration: s.integration, target: s.target, pattern: s.pattern, slo: c.slo, objective: c.objective, measured: c.measured, unit: c.unit },
        });
      } else if (c.met && (await closeBreach(engine, s, c))) {
        recovered.push(key);
        engine.log.info(
          { event: 'slo_recovered', dagId: s.dag, integration: s.integration, slo: c.slo },
          `integration ${s.integration} meets its ${c.slo} SLO again`,
        );
      }
    }
  }
  return { statuses, alerted, recovered };
}
