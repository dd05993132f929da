import { PermanentError, defineDag, defineResource, task } from 'hubflow';

/** Used by the page tests: a nightly fan-out over tenants, one of which fails when the run's conf names it. */
export const warehouse = defineResource({
  id: 'ui-warehouse',
  description: 'the reporting warehouse',
  slots: 2,
  blackouts: [{ reason: 'year-end freeze', cron: '0 0 1 1 *', timezone: 'Europe/Berlin', duration: '1h' }],
});

export default defineDag({
  id: 'ui-tenants',
  description: 'extract each tenant, load the warehouse, report',
  owner: 'mdm-team',
  schedule: { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
  window: { start: '02:30', end: '05:00' },
  deadline: '6h',
  retry: { attempts: 1 },
  tags: ['tenants'],
  tasks: {
    tenants: task({ run: () => [{ tenant: 'acme' }, { tenant: 'globex' }, { tenant: 'initech' }] }),
    extract: task<{ tenant: string }>({
      map: 'tenants',
      run: (ctx) => {
        if (ctx.conf.fail === ctx.item.tenant) throw new PermanentError(`tenant ${ctx.item.tenant}: source unreachable`);
        return ctx.item.tenant;
      },
    }),
    load: task({ after: ['extract'], uses: [warehouse], run: () => 'loaded' }),
    report: task({ after: ['load'], trigger: 'all_done', run: () => 'sent' }),
  },
});
