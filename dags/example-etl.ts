import { defineDag, task } from 'hubflow';
import { alertOnFailure, extractTenant, listTenants, publish, validateExtracts } from '../tasks/example.ts';

const tenants = task({ run: listTenants });
const extract = task({ map: tenants, timeout: '1m', run: extractTenant });
const validate = task({ after: [extract], run: async (ctx) => validateExtracts(await ctx.upstream(extract)) });

export default defineDag({
  id: 'example-etl',
  description: 'Example: per-tenant extract, fan-in validation, publish; runs on embedded defaults',
  owner: 'data-platform',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/London' },
  catchup: false,
  maxActiveRuns: 1,
  retry: { attempts: 3, backoff: 'exponential', base: '200ms', max: '5s', jitter: 'full' },
  integration: {
    name: 'example-publish',
    target: 'example-outbox',
    pattern: 'batch',
    slo: { latency: { p50: '1h', p99: '6h' }, successRate: 0.95, deadLetters: { depth: 3, dwell: '1d' } },
  },
  tasks: {
    tenants,
    extract,
    validate,
    publish: task({ after: [validate], run: async (ctx) => publish(await ctx.upstream(validate)) }),
    'alert-on-failure': task({ after: [validate], trigger: 'one_failed', run: alertOnFailure }),
  },
});
