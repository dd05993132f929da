import { defineDag, task } from 'hubflow';
import { extractHistory, listScopes, loadHistory, reconcileHistory } from '../tasks/hub-history.ts';
import { hubDb, staging, warehouse } from './resources.ts';

/**
 * Every night: one consistent snapshot of the hub per tenant, loaded into SCD2 history in the
 * warehouse, then proven by reconciliation. Mapped per tenant (plus one scope for the global
 * reference data). Load and reconcile take every scope whose upstream finished (`all_done`):
 * one tenant's failure never holds back the others', and still fails the run.
 */
const tenants = task({ uses: { hub: hubDb }, run: listScopes });
const extract = task({ map: tenants, uses: { hub: hubDb, staging }, timeout: '1h', run: extractHistory });
const load = task({ map: extract, trigger: 'all_done', uses: { warehouse, staging }, timeout: '1h', run: loadHistory });
const reconcile = task({ map: load, trigger: 'all_done', uses: { warehouse, staging }, timeout: '1h', run: reconcileHistory });

export default defineDag({
  id: 'hub-nightly',
  description: 'MDM hub -> warehouse history (SCD2), reconciled per tenant and entity',
  owner: 'data-platform',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  retry: { attempts: 4, base: '2s', max: '5m' },
  // The platform's batch targets: a change in the warehouse within 2 h (p50) and 6 h (p99) of the cut.
  integration: {
    name: 'hub-history-to-warehouse',
    target: 'warehouse',
    pattern: 'batch',
    slo: { latency: { p50: '2h', p99: '6h' }, successRate: 0.99, deadLetters: { depth: 0, dwell: '4h' } },
  },
  tasks: { tenants, extract, load, reconcile },
});
