import { defineDag, task } from 'hubflow';
import { deliverCycle, extractCycle, planCycle, renderCycle, reportCycle, validateCycle, verifyCycle } from '../tasks/filing-cycle.ts';
import { hubDb, outbox, staging } from './resources.ts';

/**
 * Government filings on the jurisdictions' own calendars. Every morning `plan` lists the filings
 * whose window is open (an FPS on its payday, an annual return from 1 January until its
 * deadline) and that the outbox does not hold yet; each goes through extract (one hub snapshot)
 * -> validate -> render -> verify -> deliver, mapped per (jurisdiction, period, tenant).
 * A manual run can name `{ jurisdiction, period, tenant }` (or `tenants: [...]`) in its conf instead.
 *
 * Deadlines: `report` alerts for each planned filing that was not delivered, with its deadline,
 * `deliver` for a filing delivered after it, `plan` for one whose deadline passed undelivered;
 * `report` also fails the run for each filing refused because its employer's tenant id is invalid.
 * The DAG's own `deadline` is an early warning: a cycle still going at 18:00 (the FPS deadline
 * is the end of payday) raises an SLA alert while there is time to act.
 */
const files = { staging, outbox };
const plan = task({ uses: { hub: hubDb, ...files }, run: planCycle });
const extract = task({ map: plan, uses: { hub: hubDb, ...files }, timeout: '1h', run: extractCycle });
const validate = task({ map: extract, trigger: 'all_done', uses: files, timeout: '1h', run: validateCycle });
const render = task({ map: validate, trigger: 'all_done', uses: files, timeout: '1h', run: renderCycle });
const verify = task({ map: render, trigger: 'all_done', uses: files, timeout: '1h', run: verifyCycle });
const deliver = task({ map: verify, trigger: 'all_done', uses: files, timeout: '10m', run: deliverCycle });
const report = task({
  after: [plan, deliver],
  trigger: 'all_done',
  run: async (ctx) => reportCycle(ctx, (await ctx.upstream(plan)) ?? [], await ctx.upstream(deliver)),
});

export default defineDag({
  id: 'filing-cycle',
  description: 'Filings per jurisdiction, period and tenant: extract, validate, render, verify, deliver to the outbox',
  owner: 'compliance',
  schedule: { cron: '0 6 * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  deadline: '1d12h',
  retry: { attempts: 3, base: '5s', max: '5m' },
  // Filings are batch by law: the SLO is the DAG's deadline, with the 06:00 cycle done by the afternoon.
  integration: {
    name: 'filings-to-jurisdictions',
    target: 'jurisdiction',
    pattern: 'batch',
    slo: { latency: { p50: '8h', p99: '1d12h' }, successRate: 0.99, deadLetters: { depth: 0, dwell: '12h' } },
  },
  tasks: { plan, extract, validate, render, verify, deliver, report },
});
