import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../core/errors.ts';
import { hubColumns, inHubSnapshot, type HubColumn, type HubDb } from '../../hub/db.ts';
import { columnOf, type ColumnType, type Entities, type Entity, type FieldClass } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { TENANT_ID_PATTERN, tenantIdProblem } from '../../hub/tenant-id.ts';
import { maskedValue } from '../../transforms/mask.ts';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Jurisdiction, Money, Violation } from '../../jurisdictions/types.ts';
import { copyRows } from './copy-lines.ts';
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

function entity(entities: Entities, name: string): Entity {
  const e = entities[name];
  if (!e) throw new PermanentError(`the hub entity configuration has no '${name}', which filings read`);
  if (!e.tenantColumn) throw new PermanentError(`hub entity '${name}' has no tenant column; filings read tenant-scoped data only`);
  return e;
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

/** Hub column types that hold the declared type's values: casting them cannot fail. */
const COMPATIBLE: Partial<Record<ColumnType, RegExp>> = {
  numeric: /^(numeric|smallint|integer|bigint)\b/,
  date: /^date$/,
};

/** What a value in a looser column (text, say) must look like for its cast to succeed. */
const CASTABLE: Partial<Record<ColumnType, { pattern: string; sqlType: string }>> = {
  numeric: { pattern: String.raw`^\s*[-+]?([0-9]+(\.[0-9]*)?|\.[0-9]+)\s*$`, sqlType: 'numeric' },
  // A real calendar day, leap years included: '2025-02-30' matches no branch.
  date: {
    pattern:
      '^([1-9][0-9]{3}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])|[1-9][0-9]{3}-(0[13-9]|1[0-2])-(29|30)|[1-9][0-9]{3}-(0[13578]|1[02])-31|([1-9][0-9](0[48]|[2468][048]|[13579][26])|([2468][048]|[13579][26])00)-02-29)$',
    sqlType: 'date',
  },
};

/** A hub column as the query reads it: its value, cast safely, and what to check of it. */
interface Read {
  /** The value as its declared type; null where the hub's value could not be cast. */
  value: string;
  /** The hub's value as text, where it is checked against a pattern (a column looser than declared). */
  raw: string | null;
  /** Declared not nullable, but the hub's column allows null. */
  notNull: boolean;
}

function columnRef(alias: string, e: Entity, field: string): string {
  return `${alias}.${ident(columnOf(e, field))}`;
}

/** Reads `field` of `e` (alias `alias`) as its declared type, never with a cast that could fail. */
function readField(alias: string, e: Entity, field: string, columns: Map<string, HubColumn>, schema: string): Read {
  const column = columnOf(e, field);
  const hub = columns.get(column);
  if (!hub) throw new PermanentError(`hub table ${schema}.${e.table} has no column '${column}' (entity '${e.name}', field '${field}'), which filings read`);
  const declared = e.columns[field]!;
  const ref = `${alias}.${ident(column)}`;
  const notNull = !declared.nullable && hub.nullable;
  const cast = CASTABLE[declared.type];
  if (!cast || COMPATIBLE[declared.type]?.test(hub.type)) return { value: cast ? `${ref}::${cast.sqlType}` : ref, raw: null, notNull };
  return { value: `case when ${ref}::text ~ '${cast.pattern}' then (${ref}::text)::${cast.sqlType} end`, raw: `${ref}::text`, notNull };
}

/** SQL `when` branches naming the first problem of a payslip read as `p` (its columns named as the fields). */
function problemsOf(e: Entity, reads: Record<string, Read>): string[] {
  return Object.entries(reads).flatMap(([f, r]) => [
    ...(r.notNull ? [`when p.${r.raw ? `${f}_raw` : f} is null then '${e.name}.${f}:not_null'`] : []),
    ...(r.raw ? [`when p.${f}_raw is not null and p.${f} is null then '${e.name}.${f}:type'`] : []),
  ]);
}

const AMOUNTS = [
  ['gross', 'gross'],
  ['incomeTax', 'income_tax'],
  ['employeeSocial', 'employee_social'],
  ['employerSocial', 'employer_social'],
  ['net', 'net'],
] as const satisfies readonly (readonly [keyof Money, string])[];

const WORKER_FIELDS = [
  'given_name',
  'family_name',
  'birth_date',
  'gender',
  'national_id',
  'national_id_type',
  'address_line1',
  'address_line2',
  'city',
  'region',
  'postcode',
  'country',
  'hire_date',
  'termination_date',
] as const;

/** The columns of a row, in order: what a reject's raw row is keyed by. */
const HEAD = [
  'tenant_id',
  'org_id',
  'worker_id',
  'contract_id',
  'pay_frequency',
  'tax_code',
  'ni_category',
  'pay_date',
  'has_worker',
  'worker_without_tenant',
  'payslip_problem',
] as const;
const COLUMNS = [...HEAD, ...WORKER_FIELDS, ...AMOUNTS.map(([, f]) => `period_${f}`), ...AMOUNTS.map(([, f]) => `ytd_${f}`)];
const WORKER_AT = HEAD.length;
const AMOUNTS_AT = WORKER_AT + WORKER_FIELDS.length;

/** How each worker field is checked in a row (the query reads them as text). */
interface WorkerCheck {
  index: number;
  field: string;
  type: ColumnType;
  nullable: boolean;
  fieldClass: FieldClass;
  maxLength?: number;
  values?: readonly string[];
}

export interface RowLayout {
  sql: string;
  workerChecks: WorkerCheck[];
}

/**
 * One row per worker paid by the employer in the tax year up to the period's end, ordered by
 * worker id so a re-run writes the same bytes. Contracts are found by the employer's org id
 * alone, not also by tenant: a contract of another tenant that names this org is a cross-tenant
 * reference, and it must reach the tenant check (and stop the filing) rather than be left out
 * of it unseen. The row keeps the contract's own tenant for that check. A contract or payslip
 * with a null or invalid tenant still joins, so that its worker is rejected rather than
 * under-reported.
 */
async function employeesQuery(client: pg.PoolClient, schema: string, entities: Entities, employer: FilingEmployer, period: FilingPeriod): Promise<RowLayout> {
  const K = entity(entities, 'contracts');
  const P = entity(entities, 'payroll_results');
  const W = entity(entities, 'workers');
  const [pCols, wCols] = [await hubColumns(client, schema, P), await hubColumns(client, schema, W)];
  const k = (f: string) => `k.${ident(columnOf(K, f))}`;
  const lit = (text: string) => client.escapeLiteral(text);
  const date = (d: string) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(d)) throw new PermanentError(`period date '${d}' is not YYYY-MM-DD`);
    return `${lit(d)}::date`;
  };
  const pf = (f: string) => readField('p', P, f, pCols, schema);
  const reads: Record<string, Read> = Object.fromEntries(
    ['worker_id', 'contract_id', 'pay_date', 'period_start', 'tax_code', 'ni_category', ...AMOUNTS.map(([, f]) => f)].map((f) => [f, pf(f)]),
  );
  const pTenant = `p.${ident(P.tenantColumn!)}`;
  const validTenant = lit(TENANT_ID_PATTERN.source);
  // The join admits a payslip whose tenant differs from its contract's only when either is null or
  // invalid: the contract's tenant is checked on the row, the payslip's here.
  const tenantProblem = [
    ...(pCols.get(P.tenantColumn!)?.nullable ? [`when p.payslip_tenant_id is null then '${P.name}.${P.tenantColumn}:not_null'`] : []),
    `when p.payslip_tenant_id <> p.tenant_id and p.tenant_id ~ ${validTenant} then '${P.name}.${P.tenantColumn}:tenant'`,
  ];
  const problems = [...tenantProblem, ...problemsOf(P, reads)];
  // Checked values are pattern matches: computed once per payslip (materialized), not at each use.
  const guarded = Object.values(reads).some((r) => r.raw);
  const selected = Object.entries(reads).flatMap(([f, r]) => [`${r.value} as ${f}`, ...(r.raw ? [`${r.raw} as ${f}_raw`] : [])]);
  const inPeriod = `p.pay_date >= ${date(period.start)}`;
  const latest = (expr: string) => `(array_agg(${expr} order by p.pay_date desc, p.period_start desc))[1]`;
  const paid = AMOUNTS.map(([, f]) => `p.${f} <> 0`).join(' or ');
  const wTenantNullable = wCols.get(W.tenantColumn!)?.nullable ?? false;
  const workerColumns = WORKER_FIELDS.map((f) => {
    const column = columnOf(W, f);
    if (!wCols.has(column))
      throw new PermanentError(`hub table ${schema}.${W.table} has no column '${column}' (entity '${W.name}', field '${f}'), which filings read`);
    return `w.${ident(column)}::text`;
  });
  const sql = `
    with k as (
      select k.${ident(K.tenantColumn!)} as tenant_id, ${k('contract_id')} as contract_id, ${k('org_id')} as org_id, ${k('pay_frequency')}::text as pay_frequency
        from ${tableName(schema, K)} k
       where ${k('org_id')} = ${lit(employer.orgId)}
    ), p as ${guarded ? 'materialized ' : ''}(
      select k.tenant_id, ${pTenant} as payslip_tenant_id, ${selected.join(', ')}
        from ${tableName(schema, P)} p
        join k on k.contract_id = ${columnRef('p', P, 'contract_id')} and (k.tenant_id = ${pTenant} or ${pTenant} is null or k.tenant_id is null or k.tenant_id !~ ${validTenant} or ${pTenant} !~ ${validTenant})
    ), pay as (
      select p.tenant_id, p.worker_id,
             ${latest('p.contract_id')} as contract_id,
             ${latest('p.tax_code')} as tax_code,
             ${latest('p.ni_category')} as ni_category,
             to_char(max(p.pay_date) filter (where ${inPeriod}), 'YYYY-MM-DD') as pay_date,
             ${AMOUNTS.map(([, f], i) => `coalesce(sum(p.${f}) filter (where ${inPeriod}), 0)::text as period_${i}`).join(', ')},
             ${AMOUNTS.map(([, f], i) => `sum(p.${f})::text as ytd_${i}`).join(', ')},
             ${problems.length ? `min(case ${problems.join(' ')} end)` : 'null::text'} as problem
        from p
       where p.pay_date between ${date(period.yearStart)} and ${date(period.end)} or p.pay_date is null
       group by 1, 2
      having bool_or(${paid})${problems.length ? ` or min(case ${problems.join(' ')} end) is not null` : ''}
    )
    select pay.tenant_id, k.org_id, pay.worker_id, pay.contract_id, k.pay_frequency, pay.tax_code, pay.ni_category, pay.pay_date,
           w.${ident(columnOf(W, 'worker_id'))} is not null,
           ${wTenantNullable ? `case when w.${ident(columnOf(W, 'worker_id'))} is null then exists (select 1 from ${tableName(schema, W)} wn where wn.${ident(W.tenantColumn!)} is null and wn.${ident(columnOf(W, 'worker_id'))} = pay.worker_id) end` : 'null::boolean'},
           pay.problem,
           ${workerColumns.join(', ')},
           ${AMOUNTS.map((_, i) => `pay.period_${i}`).join(', ')}, ${AMOUNTS.map((_, i) => `pay.ytd_${i}`).join(', ')}
      from pay
      join k on k.contract_id = pay.contract_id and k.tenant_id is not distinct from pay.tenant_id
      left join ${tableName(schema, W)} w on w.${ident(W.tenantColumn!)} = pay.tenant_id and w.${ident(columnOf(W, 'worker_id'))} = pay.worker_id
     order by pay.worker_id, pay.tenant_id`;
  const workerChecks = WORKER_FIELDS.map((field, i) => {
    const c = W.columns[field]!;
    return { index: WORKER_AT + i, field, type: c.type, nullable: c.nullable, fieldClass: c.class, maxLength: c.maxLength, values: c.values };
  });
  return { sql, workerChecks };
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
