import type pg from 'pg';
import { PermanentError } from '../../core/errors.ts';
import { columnOf, type ColumnType, type Entities, type Entity, type FieldClass } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { TENANT_ID_PATTERN } from '../../hub/tenant-id.ts';
import { hubColumns, type HubColumn } from '../../hub/snapshot.ts';
import type { FilingEmployer, FilingPeriod, Money } from '../../jurisdictions/types.ts';

/*
 * The query a filing's extract streams through COPY: one row per worker, the payslips summed in
 * PostgreSQL, every value read without a cast that could fail, and the problems of a payslip
 * named in the row. extract.ts checks the rows against the record contract.
 */

export function entity(entities: Entities, name: string): Entity {
  const e = entities[name];
  if (!e) throw new PermanentError(`the hub entity configuration has no '${name}', which filings read`);
  if (!e.tenantColumn) throw new PermanentError(`hub entity '${name}' has no tenant column; filings read tenant-scoped data only`);
  return e;
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

export const AMOUNTS = [
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
export const COLUMNS = [...HEAD, ...WORKER_FIELDS, ...AMOUNTS.map(([, f]) => `period_${f}`), ...AMOUNTS.map(([, f]) => `ytd_${f}`)];
export const WORKER_AT = HEAD.length;
export const AMOUNTS_AT = WORKER_AT + WORKER_FIELDS.length;

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
export async function employeesQuery(
  client: pg.PoolClient,
  schema: string,
  entities: Entities,
  employer: FilingEmployer,
  period: FilingPeriod,
): Promise<RowLayout> {
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
