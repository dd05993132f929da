import { defineDag, task } from 'hubflow';
import { extractPayrollChanges, loadWarehouse } from '../tasks/payroll-sync.ts';
import { payrollDb, warehouse } from './resources.ts';

/**
 * The classic collision: this sync is due at 02:00, but the payroll batch holds payroll-db from
 * 01:30 for two hours. At run time the extract waits for the batch to finish (and never times
 * out against its locks); `hubflow windows check` reports before deployment that the wait pushes
 * the start past this DAG's start window, which closes at 03:00. Moving the schedule to 04:00
 * (or widening the window) makes the check pass.
 */
const extract = task({ uses: [payrollDb], run: extractPayrollChanges });

export default defineDag({
  id: 'payroll-warehouse-sync',
  description: 'Nightly payroll changes into the warehouse; shows blackouts, start windows and deadlines',
  owner: 'data-platform',
  schedule: { cron: '0 2 * * *', timezone: 'Europe/London', jitter: '2m' },
  window: { start: '00:30', end: '03:00' },
  deadline: '1d7h', // by 07:00 the morning after the day it covers
  maxActiveRuns: 1,
  integration: {
    name: 'payroll-to-warehouse',
    target: 'warehouse',
    pattern: 'batch',
    slo: { latency: { p50: '2h', p99: '5h' }, successRate: 0.98, deadLetters: { depth: 0, dwell: '4h' } },
  },
  tasks: {
    'extract-payroll': extract,
    'load-warehouse': task({ after: [extract], uses: [warehouse], run: async (ctx) => loadWarehouse(await ctx.upstream(extract)) }),
  },
});
