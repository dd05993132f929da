import { defineDag, task } from 'hubflow';
import { extractHistory, listScopes, loadHistory, reconcileHistory } from '../tasks/hub-history.ts';

/**
 * Every night: one consistent snapshot of the hub per tenant, loaded into SCD2 history in the
 * warehouse, then proven by reconciliation. Mapped per tenant (plus one scope for the global
 * reference data). Load and reconcile take every scope whose upstream finished (`all_done`):
 * one tenant's failure never holds back the others', and still fails the run.
 */
export default defineDag({
  id: 'hub-nightly',
  description: 'MDM hub -> warehouse history (SCD2), reconciled per tenant and entity',
  owner: 'data-platform',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  retry: { attempts: 4, baseMs: 2_000, maxMs: 300_000 },
  tasks: {
    tenants: task({ uses: ['hub-db'], run: listScopes }),
    extract: task({ map: 'tenants', uses: ['hub-db'], timeoutMs: 3_600_000, run: extractHistory }),
    load: task({ map: 'extract', trigger: 'all_done', uses: ['warehouse'], timeoutMs: 3_600_000, run: loadHistory }),
    reconcile: task({ map: 'load', trigger: 'all_done', uses: ['warehouse'], timeoutMs: 3_600_000, run: reconcileHistory }),
  },
});
