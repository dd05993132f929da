import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../core/errors.ts';
import type { HubDb } from '../../hub/db.ts';
import { inHubSnapshot } from '../../hub/snapshot.ts';
import { columnOf, type Entities, type Entity } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { tenantIdProblem } from '../../hub/tenant-id.ts';
import { maskedValue } from '../../transforms/mask.ts';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Jurisdiction, Money, Violation } from '../../jurisdictions/types.ts';
import { copyRows } from './copy-lines.ts';
import { AMOUNTS, AMOUNTS_AT, COLUMNS, employeesQuery, entity, WORKER_AT, type RowLayout } from './employees-query.ts';
import { exactMinorUnits } from './money.ts';

/**
 * Reads one filing's data from the hub: the tenant's employer in the jurisdiction's country and
 * its employees' figures for the period, as canonical records. Everything comes from one
 * REPEATABLE READ READ ONLY transaction, so the employer, every record and the recorded
 * snapshot instant describe the same hub state. PostgreSQL aggregates the payslips and streams
 * one row per employee through COPY; this side parses each line as it arrives, so memory stays
 * flat however many workers the tenant has.
 *
 * The record contract is enforced here, per worker: a value the entity definitions say cannot
 * be null, a value that is not of its declared type (a text column holding 'not-a-date'),
 * longer than its maxLength or outside its enumeration (a country 'GBR', a gender 'X'), a
 * tenant that is null or not a valid id, or payslips without a worker row reject that worker's
 * record, with the field and rule, and the rest of the employer's filing goes on. The query
 * never casts a value that could fail: where the hub's column is looser than the declared type,
 * the cast is guarded by a pattern and a failing value flags its worker instead.
 */

export interface ExtractOptions<T> {
  hub: HubDb;
  schema: string;
  entities: Entities;
  jurisdiction: Jurisdiction;
  tenant: string;
  period: FilingPeriod;
  /** Consumes the records while the snapshot is open; its result is returned. */
  sink: (employer: FilingEmployer, employees: AsyncIterable<FilingEmployee>) => Promise<T>;
  /** Receives each rejected record's violations (one or more) as it is found. */
  onReject?: (violations: RecordReject[]) => Promise<void> | void;
  signal?: AbortSignal;
}

/** A record refused at extract: the violation (values masked) and the row as read, for the store. */
export interface RecordReject extends Violation {
  readonly raw: string;
}

export type ExtractOutcome<T> =
  | { snapshotAt: string; employer: FilingEmployer; result: T; rejected: number }
  | { snapshotAt: string; employer: null; rejected: 0 };

export async function extractFiling<T>(options: ExtractOptions<T>): Promise<ExtractOutcome<T>> {
  const { entities, schema } = options;
  return inHubSnapshot(options.hub, async (client, snapshotAt): Promise<ExtractOutcome<T>> => {
    const employer = await readEmployer(client, schema, entity(entities, 'orgs'), options.tenant, options.jurisdiction.country);
    if (!employer) return { snapshotAt, employer: null, rejected: 0 };
    const layout = await employeesQuery(client, schema, entities, employer, options.period);
    const stream = client.query(copyTo(`copy (${layout.sql}) to stdout`));
    const abort = () => stream.destroy(options.signal?.reason instanceof Error ? options.signal.reason : new Error('extract aborted'));
    options.signal?.addEventListener('abort', abort, { once: true });
    let ended = false;
    stream.once('end', () => (ended = true));
    const counter = { rejected: 0 };
    try {
      const result = await options.sink(employer, employees(copyRows(stream), layout, options.onReject, counter, options.signal));
      // A sink that stops early would leave the COPY unfinished, and the COMMIT queued behind it.
      if (!ended) throw new Error('the filing extract stopped reading before the end of the records');
      return { snapshotAt, employer, result, rejected: counter.rejected };
    } finally {
      options.signal?.removeEventListener('abort', abort);
      if (!stream.destroyed) stream.destroy();
      // A COPY cut short is ended by closing its connection, which reports it to the stream once more.
      stream.on('error', () => undefined);
    }
  });
}

async function readEmployer(client: pg.PoolClient, schema: string, orgs: Entity, tenant: string, country: string): Promise<FilingEmployer | null> {
  const c = (field: string) => `o.${ident(columnOf(orgs, field))}`;
  const { rows } = await client.query<Record<string, string | null>>(
    `select ${c('org_id')} as org_id, ${c('legal_name')} as legal_name, ${c('country')} as country, ${c('tax_id')} as tax_id,
            ${c('payroll_ref')} as payroll_ref, ${c('accounts_office_ref')} as accounts_office_ref,
            ${c('address_line1')} as line1, ${c('city')} as city, ${c('postcode')} as postcode
       from ${tableName(schema, orgs)} o
      where o.${ident(orgs.tenantColumn!)} = $1 and ${c('country')} = $2
      order by 1`,
    [tenant, country],
  );
  if (!rows.length) return null;
  if (rows.length > 1) {
    throw new PermanentError(
      `tenant '${tenant}' has ${rows.length} employers in ${country} (${rows.map((r) => r.org_id).join(', ')}): a filing folder holds one employer per tenant and jurisdiction`,
    );
  }
  const r = rows[0]!;
  // The employer is the filing: a required value missing stops it, with the field and rule.
  const missing = (['legal_name', 'country', 'tax_id', 'line1', 'city', 'postcode'] as const).filter((f) => r[f] === null);
  if (missing.length) {
    const fields = missing.map((f) => `orgs.${f === 'line1' ? 'address_line1' : f}`).join(', ');
    throw new PermanentError(
      `employer ${r.org_id} of tenant '${tenant}': ${fields} (not_null) is null, and the entity definition requires a value; nothing can be filed for it`,
    );
  }
  return {
    tenantId: tenant,
    orgId: r.org_id!,
    legalName: r.legal_name!,
    country: r.country!,
    taxId: r.tax_id!,
    payrollRef: r.payroll_ref ?? null,
    accountsOfficeRef: r.accounts_office_ref ?? null,
    // The hub keeps one address line per org, and no region: a US state comes from the ZIP code.
    address: { line1: r.line1!, line2: null, city: r.city!, region: null, postcode: r.postcode!, country: r.country! },
  };
}

type Row = (string | null)[];

/**
 * The canonical records of the rows, in order, and the rejects of the rest. Rows of one worker
 * id come together (the query orders by it); when any of them is refused, all are, so a worker
 * is either filed whole or rejected, never filed with part of their pay.
 */
async function* employees(
  rows: AsyncIterable<Row>,
  layout: RowLayout,
  onReject: ExtractOptions<unknown>['onReject'],
  counter: { rejected: number },
  signal: AbortSignal | undefined,
): AsyncGenerator<FilingEmployee> {
  let group: Row[] = [];
  async function* settle(): AsyncGenerator<FilingEmployee> {
    const checked = group.map((r) => ({ row: r, ...toRecord(r, layout) }));
    group = [];
    const violations = checked.flatMap((c) => c.violations.map((v) => ({ ...v, raw: rawRow(c.row) })));
    if (!violations.length) {
      for (const c of checked) yield c.record!;
      return;
    }
    counter.rejected++;
    await onReject?.(violations);
  }
  for await (const r of rows) {
    // The COPY may have sent everything already: stopping the stream alone would not stop this.
    signal?.throwIfAborted();
    if (group.length && group[0]![2] !== r[2]) yield* settle();
    group.push(r);
  }
  if (group.length) yield* settle();
}

function rawRow(r: Row): string {
  return JSON.stringify(Object.fromEntries(COLUMNS.map((name, i) => [name, r[i] ?? null])));
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAYS = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];

export function isIsoDate(v: string): boolean {
  const m = ISO_DATE.exec(v);
  if (!m) return false;
  const [y, mo, d] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (y < 1 || mo < 1 || mo > 12 || d < 1) return false;
  const leap = y % 4 === 0 && (y % 100 !== 0 || y % 400 === 0);
  return d <= (mo === 2 && leap ? 29 : DAYS[mo - 1]!);
}

const RULE_TEXT: Record<string, string> = {
  not_null: 'is null, and the entity definition requires a value',
  type: 'holds a value that is not of its declared type',
};

/** Checks one row against the record contract; the record when it holds, else why not. */
function toRecord(r: Row, layout: RowLayout): { record?: FilingEmployee; violations: Violation[] } {
  const [tenantId, orgId, workerId, contractId, payFrequency, taxCode = null, niCategory = null, payDate = null, hasWorker, withoutTenant, payslipProblem] = r;
  const key = workerId ?? '(no worker id)';
  const violations: Violation[] = [];
  // The record names the worker; the message leaves it out, so that reasons count up by kind.
  const broke = (field: string, rule: string, message: string) => violations.push({ record: key, field, rule, message });
  const tenantProblem = tenantIdProblem(tenantId);
  if (tenantProblem) broke('contracts.tenant_id', 'tenant', `the contract with employer ${orgId}: ${tenantProblem}`);
  if (workerId === null) broke('payroll_results.worker_id', 'not_null', `payslips under employer ${orgId} name no worker`);
  if (payslipProblem) {
    const [field, rule] = payslipProblem.split(':') as [string, string];
    broke(field, rule, `a payslip of the tax year to date: ${field} ${RULE_TEXT[rule] ?? rule}`);
  }
  if (hasWorker !== 't' && !tenantProblem) {
    if (withoutTenant === 't')
      broke('workers.tenant_id', 'not_null', `the worker has payslips under employer ${orgId}, but the worker row's tenant is null: it belongs to no tenant`);
    else
      broke(
        'workers',
        'missing',
        `the worker has payslips of tenant '${tenantId}' under employer ${orgId} but no worker row in that tenant: the filing would under-report`,
      );
  }
  if (payFrequency === null) broke('contracts.pay_frequency', 'not_null', `the contract's pay_frequency ${RULE_TEXT.not_null}`);
  if (hasWorker === 't') {
    for (const c of layout.workerChecks) {
      const v = r[c.index] ?? null;
      if (v === null) {
        if (!c.nullable) broke(`workers.${c.field}`, 'not_null', `workers.${c.field} ${RULE_TEXT.not_null}`);
      } else if (c.type === 'date' && !isIsoDate(v)) {
        broke(`workers.${c.field}`, 'type', `workers.${c.field} holds ${maskedValue(v, c.fieldClass)}, not a date (YYYY-MM-DD)`);
      } else if (c.maxLength !== undefined && [...v].length > c.maxLength) {
        broke(
          `workers.${c.field}`,
          'max_length',
          `workers.${c.field} holds ${maskedValue(v, c.fieldClass)}, longer than the ${c.maxLength} characters allowed`,
        );
      } else if (c.values && !c.values.includes(v)) {
        broke(`workers.${c.field}`, 'enum', `workers.${c.field} holds ${maskedValue(v, c.fieldClass)}, not one of ${c.values.join(', ')}`);
      }
    }
  }
  const money = (at: number, what: string): Money => {
    const m = {} as Record<keyof Money, number>;
    AMOUNTS.forEach(([name, f], i) => {
      const value = exactMinorUnits(r[at + i] ?? '0');
      if (value === null) broke(`payroll_results.${f}`, 'type', `the ${what} sum of payroll_results.${f} is not an exact amount with at most two decimals`);
      m[name] = value ?? 0;
    });
    return m;
  };
  const period = money(AMOUNTS_AT, 'period');
  const yearToDate = money(AMOUNTS_AT + AMOUNTS.length, 'year-to-date');
  if (violations.length) return { violations };
  const v = (i: number) => r[WORKER_AT + i] ?? null;
  return {
    violations,
    record: {
      tenantId: tenantId!,
      orgId: orgId!,
      workerId: workerId!,
      contractId: contractId!,
      givenName: v(0) ?? '',
      familyName: v(1) ?? '',
      birthDate: v(2) ?? '',
      gender: v(3),
      nationalId: v(4),
      nationalIdType: v(5) ?? '',
      address: { line1: v(6) ?? '', line2: v(7), city: v(8) ?? '', region: v(9), postcode: v(10) ?? '', country: v(11) ?? '' },
      hireDate: v(12) ?? '',
      terminationDate: v(13),
      payFrequency: payFrequency ?? '',
      taxCode,
      niCategory,
      payDate,
      period,
      yearToDate,
    },
  };
}
