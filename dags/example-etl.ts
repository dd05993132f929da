import { defineDag, task } from 'hubflow';
import { alertOnFailure, extractTenant, listTenants, publish, validateExtracts } from '../tasks/example.ts';

export default defineDag({
  id: 'example-etl',
  description: 'Example: per-tenant extract, fan-in validation, publish; runs on embedded defaults',
  owner: 'data-platform',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  retry: { attempts: 3, backoff: 'exponential', baseMs: 200, maxMs: 5_000, jitter: 'full' },
  tasks: {
    tenants: task({ run: listTenants }),
    extract: task<string>({ map: 'tenants', timeoutMs: 60_000, run: extractTenant }),
    validate: task({ after: ['extract'], run: validateExtracts }),
    publish: task({ after: ['validate'], run: publish }),
    'alert-on-failure': task({ after: ['validate'], trigger: 'one_failed', run: alertOnFailure }),
  },
});
