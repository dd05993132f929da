import { defineDag, defineResource, task } from 'hubflow';
import type { DeleteCadence } from '../tasks/history/extract.ts';
import { extractIncrementalWith, listIncrementalScopes, loadHistory, reconcileHistory } from '../tasks/hub-history.ts';
import { hubDb, staging, warehouse } from './resources.ts';

/**
 * Every hour: per tenant, only what changed in the hub since the snapshot last applied to it
 * (a watermark kept in the warehouse's ledger), with the hub's count of the tenant, loaded into
 * the same SCD2 history as the nightly full snapshot and reconciled over the whole tenant. The
 * nightly run (hub-nightly) stays: its full snapshot compares every record, and closes deletes.
 */

/**
 * When the hourly run closes rows the hub deleted. 'nightly': never by itself; the hub's count
 * shows them, each hourly reconciliation reports them as pending deletes, and the next
 * hub-nightly full snapshot (02:00 London) closes them, so a delete reaches the warehouse
 * within a day. It keeps the hourly run to the changed rows and a count: the hub's key set
 * costs seconds for a million workers, every hour, for deletes an HR hub rarely makes (a
 * leaver is an update). 'every-run' stages the key set each run and compares it when the
 * counts say the hub deleted rows, closing them within the hour.
 */
export const HOURLY_DELETES: DeleteCadence = 'nightly';

/**
 * The nightly full load's window, 01:45 to 05:00 London: no task of this DAG starts inside it,
 * and one still running when it opens is cancelled (its retry waits for the end), so the hourly
 * and the nightly runs never work against the warehouse at once. Its start is 15 minutes ahead
 * of hub-nightly's 02:00 schedule; its length is the nightly's longest load with a margin.
 */
export const nightlyHistoryWindow = defineResource({
  id: 'nightly-history-window',
  description: 'The nightly full history load (hub-nightly): incremental runs wait',
  blackouts: [{ reason: 'nightly full history load (hub-nightly)', cron: '45 1 * * *', timezone: 'Europe/London', duration: '3h15m' }],
  onBlackout: 'cancel',
});

const uses = { warehouse, staging, window: nightlyHistoryWindow };
const tenants = task({ uses: { hub: hubDb, warehouse, window: nightlyHistoryWindow }, run: listIncrementalScopes });
const extract = task({
  map: tenants,
  uses: { hub: hubDb, staging, window: nightlyHistoryWindow },
  timeout: '20m',
  run: extractIncrementalWith(HOURLY_DELETES),
});
const load = task({ map: extract, trigger: 'all_done', uses, timeout: '20m', run: loadHistory });
const reconcile = task({ map: load, trigger: 'all_done', uses, timeout: '20m', run: reconcileHistory });

export default defineDag({
  id: 'hub-hourly',
  description: 'MDM hub -> warehouse history (SCD2), the changes since the last load, reconciled per tenant and entity',
  owner: 'data-platform',
  schedule: { cron: '30 * * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  retry: { attempts: 3, base: '2s', max: '2m' },
  // From the run's cut (its interval end) to the warehouse: the run's own length, seconds to minutes.
  integration: {
    name: 'hub-history-incremental',
    target: 'warehouse',
    pattern: 'incremental',
    slo: { latency: { p50: '15m', p99: '1h' }, successRate: 0.99, deadLetters: { depth: 0, dwell: '2h' } },
  },
  tasks: { tenants, extract, load, reconcile },
});
