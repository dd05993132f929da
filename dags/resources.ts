import { defineResource } from 'hubflow';
import { OUTBOX_SETTINGS, openHubHandle, openOutbox, openStaging, openWarehouseHandle, STAGING_SETTINGS, WAREHOUSE_SETTINGS } from '../tasks/resources.ts';

/**
 * The shared systems the bundled DAGs touch: how each opens (from the few settings it names,
 * and only those), and when other batches hold it. A task that uses a resource never starts
 * inside one of its blackouts (it waits for the window to end) and gets its handle in ctx.resources.
 */
export const hubDb = defineResource({
  id: 'hub-db',
  description: 'MDM hub (PostgreSQL): golden records',
  blackouts: [{ reason: 'weekly hub maintenance', cron: '0 4 * * 0', timezone: 'Europe/London', duration: '1h' }],
  settings: ['HUBFLOW_HUB_URL', 'HUBFLOW_HUB_SCHEMA', 'HUBFLOW_DATABASE_URL'],
  open: openHubHandle,
  close: (hub) => hub.db.destroy(),
});

export const payrollDb = defineResource({
  id: 'payroll-db',
  description: 'Payroll engine database',
  blackouts: [
    { reason: 'payroll batch', cron: '30 1 * * *', timezone: 'Europe/London', duration: '2h' },
    { reason: 'month-end close', lastBusinessDay: '18:00', timezone: 'Europe/London', duration: '6h' },
  ],
});

export const warehouse = defineResource({
  id: 'warehouse',
  description: 'Analytics warehouse (Snowflake, or PostgreSQL embedded)',
  slots: 4,
  settings: WAREHOUSE_SETTINGS,
  open: openWarehouseHandle,
  close: (wh) => wh.close(),
});

/** Where bulk data waits between tasks (snapshots, rendered filings). */
export const staging = defineResource({
  id: 'staging',
  description: 'Staging folder (HUBFLOW_STAGING_DIR, else HUBFLOW_HOME/staging)',
  settings: STAGING_SETTINGS,
  open: openStaging,
});

/** Where filings are delivered. */
export const outbox = defineResource({
  id: 'outbox',
  description: 'Filing outbox (HUBFLOW_OUTBOX_DIR, else HUBFLOW_HOME/outbox)',
  settings: OUTBOX_SETTINGS,
  open: openOutbox,
});
