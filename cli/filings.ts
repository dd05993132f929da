import { stat } from 'node:fs/promises';
import path from 'node:path';
import { Option, type Command } from 'commander';
import { decimal } from '../jurisdictions/common.ts';
import type { Jurisdiction } from '../jurisdictions/types.ts';
import { printJson, printRows } from './output.ts';
import type { Config } from '../core/config.ts';

/**
 * `hubflow filings ...`: check any filing file against its jurisdiction's rules, and list what
 * the outbox holds. Exit codes: 0 clean, 1 violations found, 2 usage errors (an unknown
 * jurisdiction, a file that is not there), so scripts can tell a bad file from a bad call.
 */

const USAGE = 2;

function usage(command: string, message: string): void {
  process.stderr.write(`hubflow filings ${command}: ${message}\n`);
  process.exitCode = USAGE;
}

/** Loaded when a filings command runs (or shows its help): their XML parsers and schemas are large. */
let JURISDICTIONS: readonly Jurisdiction[] = [];
const known = () => JURISDICTIONS.map((j) => j.code).join(', ');

/** Totals as decimal text: 'wages 1234.56, federalIncomeTax 10.00'; the table leaves out zeros (EFW2 states 25 totals). */
export function describeTotals(money: Readonly<Record<string, number>>, skipZero = false): string {
  return Object.entries(money)
    .filter(([, v]) => !skipZero || v !== 0)
    .map(([k, v]) => `${k} ${decimal(v)}`)
    .join(', ');
}

export function outboxDirOf(config: Config): string {
  return path.resolve(config.HUBFLOW_OUTBOX_DIR ?? path.join(path.resolve(config.HUBFLOW_HOME), 'outbox'));
}

async function validateCommand(file: string | undefined, opts: { jurisdiction?: string; json?: boolean }): Promise<void> {
  if (!opts.jurisdiction) return usage('validate', `--jurisdiction <code> is required (one of ${known()})`);
  const j: Jurisdiction | undefined = JURISDICTIONS.find((x) => x.code === opts.jurisdiction);
  if (!j) return usage('validate', `unknown jurisdiction '${opts.jurisdiction}'; known: ${known()}`);
  if (!file) return usage('validate', 'which file? hubflow filings validate <file> --jurisdiction <code>');
  const info = await stat(file).catch(() => null);
  if (!info?.isFile()) return usage('validate', `${file}: no such file`);

  const { totals, violations } = await j.validateFile(file);
  if (violations.length) process.exitCode = 1;
  if (opts.json) {
    printJson({ file, jurisdiction: j.code, spec: j.spec, valid: !violations.length, records: totals.records, totals: totals.money, violations });
    return;
  }
  if (violations.length) {
    printRows(
      violations.map((v) => ({ record: v.record, field: v.field, rule: v.rule, message: v.message })),
      false,
    );
    process.stdout.write(`${file}: ${violations.length} violation${violations.length === 1 ? '' : 's'} of ${j.title} (${j.spec.version}) rules\n`);
  } else {
    process.stdout.write(`${file}: valid ${j.title} (${j.spec.version}): ${totals.records} records; ${describeTotals(totals.money) || 'no money totals'}\n`);
  }
}

async function listCommand(opts: { period?: string; tenant?: string; jurisdiction?: string; json?: boolean }): Promise<void> {
  if (opts.jurisdiction && !JURISDICTIONS.some((j) => j.code === opts.jurisdiction))
    return usage('list', `unknown jurisdiction '${opts.jurisdiction}'; known: ${known()}`);
  const outbox = outboxDirOf((await import('../core/config.ts')).loadConfig());
  const { filings, unfinished, skipped } = await (await import('../tasks/filings/outbox.ts')).listOutbox(outbox, {
    period: opts.period,
    tenant: opts.tenant,
    jurisdiction: opts.jurisdiction,
  });
  if (opts.json) printJson({ outbox, filings: filings.map((f) => ({ folder: f.folder, ...f.manifest })), unfinished, skipped });
  else {
    printRows(
      filings.map(({ folder, manifest: m }) => ({
        jurisdiction: m.jurisdiction,
        period: m.period.id,
        tenant: m.tenant,
        employer: `${m.employer.orgId} ${m.employer.payrollRef ?? m.employer.taxId}`,
        records: m.records,
        rejected: m.rejected,
        totals: describeTotals(m.totals, true),
        file: path.join(folder, m.file.name),
        sha256: m.file.sha256.slice(0, 12),
      })),
      false,
    );
  }
  // Unfinished folders go to stderr so the table (or JSON) on stdout stays clean for scripts.
  for (const u of unfinished) process.stderr.write(`unfinished: ${u.folder}: ${u.problem}\n`);
  for (const u of skipped) process.stderr.write(`skipped: ${u.folder}: ${u.problem}\n`);
}

export function registerFilingsCommands(program: Command): void {
  const filings = program
    .command('filings')
    .description('government filing files: validate one, list the outbox')
    // Commander's own usage errors exit 1, which here means "violations found": make them 2.
    .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : USAGE));
  const format = new Option('--jurisdiction <code>', "the file's format");
  filings.hook('preSubcommand', async () => {
    JURISDICTIONS = (await import('../jurisdictions/index.ts')).JURISDICTIONS;
    format.description = `the file's format: ${known()}`;
  });

  filings
    .command('validate')
    .description('check a filing file (any producer) against its jurisdiction: exit 1 on any violation, 0 when clean, 2 on usage errors')
    .argument('[file]', 'the file to check')
    .addOption(format)
    .option('--json', 'print JSON')
    .action(validateCommand);

  filings
    .command('list')
    .description('the finished filings in the outbox, from their manifests')
    .option('--period <id>', "only this period (e.g. '2025', '2025-26-M09')")
    .option('--tenant <tenant>', 'only this tenant')
    .option('--jurisdiction <code>', 'only this jurisdiction')
    .option('--json', 'print JSON (the manifests)')
    .action(listCommand);
}
