import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { dayOption, wholeNumber } from './args.ts';
import { GLOBAL_SCOPE } from '../hub/tenant-id.ts';
import { printJson, printRows, withRuntime } from './output.ts';
import type { Runtime } from '../server/runtime.ts';

const percent = (rate: number) => `${(rate * 100).toFixed(3)}%`;

/** Prints what reconciliation found for a run (default: the latest reconciled run); exit 1 when any failed. */
export async function reconcileReport(rt: Runtime, runId: number | undefined, json: boolean): Promise<boolean> {
  const db = rt.db;
  const run =
    runId ??
    (
      await db
        .selectFrom('reconciliations')
        .select((eb) => eb.fn.max('run_id').as('run'))
        .executeTakeFirst()
    )?.run ??
    undefined;
  // With --json stdout holds one JSON document whatever happens; the explanation goes to stderr.
  const none = (text: string): void => {
    if (!json) return void process.stdout.write(text);
    printJson([]);
    process.stderr.write(text);
  };
  if (run === undefined || run === null) {
    none('no reconciliations recorded yet\n');
    return true;
  }
  const rows = await db.selectFrom('reconciliations').selectAll().where('run_id', '=', Number(run)).orderBy('tenant_id').orderBy('entity').execute();
  if (!rows.length) {
    none(
      `run ${run} has no reconciliations: it is not a run of the history DAG, its reconcile tasks did not run, or they were skipped (see hubflow runs show ${run})\n`,
    );
    return false;
  }
  const fields = await db
    .selectFrom('reconciliation_fields')
    .selectAll()
    .where(
      'reconciliation_id',
      'in',
      rows.map((r) => r.id),
    )
    .orderBy('reconciliation_id')
    .orderBy('field')
    .execute();
  if (json) {
    printJson(rows.map((r) => ({ ...r, fields: fields.filter((f) => f.reconciliation_id === r.id) })));
  } else {
    process.stdout.write(`reconciliation of run ${run} (${rows[0]!.logical_date.toISOString().slice(0, 10)})\n\n`);
    printRows(
      rows.map((r) => ({
        tenant: r.tenant_id,
        entity: r.entity,
        hub: r.source_count,
        rejected: r.rejected,
        staged: r.staged_count,
        current: r.current_count,
        matched: r.matched,
        mismatched: r.mismatched,
        'missing in warehouse': r.missing_in_target,
        'missing in hub': r.missing_in_source,
        rate: percent(r.mismatch_rate),
        severity: r.severity,
        status: r.status,
      })),
      false,
    );
    if (fields.length) {
      const scope = new Map(rows.map((r) => [r.id, `${r.tenant_id} ${r.entity}`]));
      process.stdout.write('\nmismatches by field\n\n');
      printRows(
        fields.map((f) => ({
          scope: scope.get(f.reconciliation_id),
          field: f.field,
          class: f.field_class,
          severity: f.severity,
          records: f.mismatched,
          'sample keys': f.sample_keys.join(' '),
        })),
        false,
      );
    }
  }
  return rows.every((r) => r.status !== 'failed');
}

export function registerHistoryCommands(program: Command): void {
  program
    .command('reconcile')
    .description('reconciliation of the hub against the warehouse')
    .command('report')
    .description('per tenant and entity: counts, checksums, record-level result and field mismatches (exit 1 if a check failed)')
    .option('--run <id>', 'run id (default: the latest reconciled run)', wholeNumber(1))
    .option('--json', 'print JSON')
    .action((opts: { run?: number; json?: boolean }) =>
      withRuntime(async (rt) => {
        if (!(await reconcileReport(rt, opts.run, opts.json ?? false))) process.exitCode = 1;
      }),
    );

  program
    .command('history')
    .description('the warehouse history the nightly DAG builds')
    .command('approve-deletes')
    .description('let one load delete more rows than the mass-delete guard allows (the hub really lost them); then clear the load task')
    .option('--entity <name>', 'entity, e.g. workers (default: every entity)', '*')
    .requiredOption('--tenant <id>', `tenant id (${GLOBAL_SCOPE} for the global reference data)`)
    .requiredOption('--date <YYYY-MM-DD>', "the UTC day the load's data interval starts (the ledger's logical_date; the load's error names it)", dayOption)
    .requiredOption('--reason <text>', 'why: kept with the approval')
    .option('--by <name>', 'who approves (default: the system user)', userInfo().username)
    .action((opts: { entity: string; tenant: string; date: string; reason: string; by: string }) =>
      withRuntime(async (rt) => {
        const { HUB_ENTITIES } = await import('../hub/entities.ts');
        const { approveDeletes } = await import('../tasks/history/apply.ts');
        if (opts.entity !== '*' && !HUB_ENTITIES[opts.entity])
          throw new Error(`--entity: unknown entity '${opts.entity}'; known: ${Object.keys(HUB_ENTITIES).join(', ')}`);
        await approveDeletes(await rt.connections.warehouse(), HUB_ENTITIES, {
          entity: opts.entity,
          // '' named the global scope before it had one name everywhere.
          tenant: opts.tenant === '' ? GLOBAL_SCOPE : opts.tenant,
          logicalDate: opts.date,
          approvedBy: opts.by,
          reason: opts.reason,
        });
        process.stdout.write(
          `approved: ${opts.entity === '*' ? 'every entity' : opts.entity} of '${opts.tenant}' on ${opts.date} may delete beyond the guard; clear the failed load task to apply it\n`,
        );
      }),
    );
}
