import { defineDag, task } from 'hubflow';

/** Used by the gantt page test: a mapped task whose globex instance fails its first try and succeeds on the second. */
export default defineDag({
  id: 'ui-gantt',
  description: 'a mapped extract with one retry',
  tasks: {
    tenants: task({ run: () => [{ tenant: 'acme' }, { tenant: 'globex' }] }),
    extract: task<{ tenant: string }>({
      map: 'tenants',
      retry: { attempts: 2, backoff: 'fixed', base: '200ms', jitter: 'none' },
      run: async (ctx) => {
        if (ctx.item.tenant === 'globex' && ctx.tryNumber === 1) throw new Error('globex: connection reset');
        return ctx.item.tenant;
      },
    }),
    report: task({ after: ['extract'], run: () => 'sent' }),
  },
});
