import { defineDag, task } from 'hubflow';
import { deliverCycle, extractCycle, planCycle, renderCycle, reportCycle, validateCycle, verifyCycle } from '../tasks/filing-cycle.ts';

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
export default defineDag({
  id: 'filing-cycle',
  description: 'Filings per jurisdiction, period and tenant: extract, validate, render, verify, deliver to the outbox',
  owner: 'compliance',
  schedule: { cron: '0 6 * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  deadline: 'P1DT12H',
  retry: { attempts: 3, baseMs: 5_000, maxMs: 300_000 },
  tasks: {
    plan: task({ uses: ['hub-db'], run: planCycle }),
    extract: task({ map: 'plan', uses: ['hub-db'], timeoutMs: 3_600_000, run: extractCycle }),
    validate: task({ map: 'extract', trigger: 'all_done', timeoutMs: 3_600_000, run: validateCycle }),
    render: task({ map: 'validate', trigger: 'all_done', timeoutMs: 3_600_000, run: renderCycle }),
    verify: task({ map: 'render', trigger: 'all_done', timeoutMs: 3_600_000, run: verifyCycle }),
    deliver: task({ map: 'verify', trigger: 'all_done', timeoutMs: 600_000, run: deliverCycle }),
    report: task({ after: ['plan', 'deliver'], trigger: 'all_done', run: reportCycle }),
  },
});
