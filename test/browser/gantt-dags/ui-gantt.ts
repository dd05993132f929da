import { defineDag, defineResource, task } from 'hubflow';

// Held for a few seconds from when the file is loaded, so the report waits for the end of a blackout.
const loadedAt = Date.now();
export const mailer = defineResource({
  id: 'ui-mailer',
  deferJitter: '200ms',
  blackouts: [{ reason: 'mail freeze', from: new Date(loadedAt - 60_000).toISOString(), to: new Date(loadedAt + 4_000).toISOString() }],
});

/** Used by the gantt page test: a mapped task whose globex instance fails its first try and succeeds on the second, and a report deferred by a blackout. */
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
    report: task({ after: ['extract'], uses: [mailer], run: () => 'sent' }),
  },
});
