import { defineResource } from 'hubflow';

/**
 * The shared systems the bundled DAGs touch, and when other batches hold them. A task that
 * uses a resource never starts inside one of its blackouts: it waits for the window to end.
 */
export const hubDb = defineResource({
  id: 'hub-db',
  description: 'MDM hub (PostgreSQL): golden records',
  blackouts: [{ reason: 'weekly hub maintenance', cron: '0 4 * * 0', timezone: 'Europe/London', duration: '1h' }],
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
});
