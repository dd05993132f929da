import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../server/errors.ts';
import { inHubSnapshot, type HubDb } from '../../server/hub/db.ts';
import { columnOf, type Entities, type Entity } from '../../server/hub/entities.ts';
import { ident, tableName } from '../../server/hub/schema.ts';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Jurisdiction, Money } from '../../jurisdictions/types.ts';
import { copyRows } from './copy-lines.ts';
import { minorUnits } from './money.ts';

/**
 * Reads one filing's data from the hub: the tenant's employer in the jurisdiction's country and
 * its employees' figures for the period, as canonical records. Everything comes from one
 * REPEATABLE READ READ ONLY transaction, so the employer, every record and the recorded
 * snapshot instant describe the same hub state. PostgreSQL aggregates the payslips and streams
 * one row per employee through COPY; this side parses each line as it arrives, so memory stays
 * flat however many workers the tenant has.
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
  signal?: AbortSignal;
}

export type ExtractOutcome<T> = { snapshotAt: string; employer: FilingEmployer; result: T } | { snapshotAt: string; employer: null };

export async function extractFiling<T>(options: ExtractOptions<T>): Promise<ExtractOutcome<T>> {
  const { entities, schema } = options;
  return inHubSnapshot(options.hub, async (client, snapshotAt): Promise<ExtractOutcome<T>> => {
    const employer = await readEmployer(client, schema, entity(entities, 'orgs'), options.tenant, options.jurisdiction.country);
    if (!employer) return { snapshotAt, employer: null };
    const sql = employeesQuery(client, schema, entities, employer, options.period);
    const stream = client.query(copyTo(`copy (${sql}) to stdout`));
    const abort = () => stream.destroy(options.signal?.reason instanceof Error ? options.signal.reason : new Error('extract aborted'));
    options.signal?.addEventListener('abort', abort, { once: true });
    try {
      return { snapshotAt, employer, result: await options.sink(employer, employees(copyRows(stream), employer)) };
    } finally {
      options.signal?.removeEventListener('abort', abort);
      if (!stream.destroyed) stream.destroy();
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

const AMOUNTS = [
  ['gross', 'gross'],
  ['incomeTax', 'income_tax'],
  ['employeeSocial', 'employee_social'],
  ['employerSocial', 'employer_social'],
  ['net', 'net'],
] as const satisfies readonly (readonly [keyof Money, string])[];

const WORKER_FIELDS = [
  'given_name', 'family_name', 'birth_date', 'gender', 'national_id', 'national_id_type',
  'address_line1', 'address_line2', 'city', 'region', 'postcode', 'country', 'hire_date', 'termination_date',
] as const;
const DATES = new Set<string>(['birth_date', 'hire_date', 'termination_date']);

/**
 * One row per worker paid by the employer in the tax year up to the period's end, ordered by
 * worker id so a re-run writes the same bytes. Contracts are found by the employer's org id
 * alone, not also by tenant: a contract of another tenant that names this org is a cross-tenant
 * reference, and it must reach the tenant check (and stop the filing) rather than be left out
 * of it unseen. The row keeps the contract's own tenant for that check.
 */
function employeesQuery(client: pg.PoolClient, schema: string, entities: Entities, employer: FilingEmployer, period: FilingPeriod): string {
  const K = entity(entities, 'contracts');
  const P = entity(entities, 'payroll_results');
  const W = entity(entities, 'workers');
  const k = (f: string) => `k.${ident(columnOf(K, f))}`;
  const p = (f: string) => `p.${ident(columnOf(P, f))}`;
  const w = (f: string) => `w.${ident(columnOf(W, f))}`;
  const lit = (text: string) => client.escapeLiteral(text);
  const date = (d: string) => {
    if (!/^\d{4}-\d{2}-\d{2}$/.test(d)) throw new PermanentError(`period date '${d}' is not YYYY-MM-DD`);
    return `${lit(d)}::date`;
  };
  const inPeriod = `${p('pay_date')} >= ${date(period.start)}`;
  const latest = (expr: string) => `(array_agg(${expr} order by ${p('pay_date')} desc, ${p('period_start')} desc))[1]`;
  const paid = AMOUNTS.map(([, f]) => `${p(f)} <> 0`).join(' or ');
  const workerColumns = WORKER_FIELDS.map((f) => (DATES.has(f) ? `to_char(${w(f)}::date, 'YYYY-MM-DD')` : w(f)));
  return `
    with k as (
      select k.${ident(K.tenantColumn!)} as tenant_id, ${k('contract_id')} as contract_id, ${k('org_id')} as org_id, ${k('pay_frequency')} as pay_frequency
        from ${tableName(schema, K)} k
       where ${k('org_id')} = ${lit(employer.orgId)}
    ), pay as (
      select p.${ident(P.tenantColumn!)} as tenant_id, ${p('worker_id')} as worker_id,
             ${latest(p('contract_id'))} as contract_id,
             ${latest(p('tax_code'))} as tax_code,
             ${latest(p('ni_category'))} as ni_category,
             to_char(max(${p('pay_date')}) filter (where ${inPeriod}), 'YYYY-MM-DD') as pay_date,
             ${AMOUNTS.map(([, f], i) => `coalesce(sum(${p(f)}) filter (where ${inPeriod}), 0)::text as period_${i}`).join(', ')},
             ${AMOUNTS.map(([, f], i) => `sum(${p(f)})::text as ytd_${i}`).join(', ')}
        from ${tableName(schema, P)} p
        join k on k.tenant_id = p.${ident(P.tenantColumn!)} and k.contract_id = ${p('contract_id')}
       where ${p('pay_date')} between ${date(period.yearStart)} and ${date(period.end)}
       group by 1, 2
      having bool_or(${paid})
    )
    select pay.tenant_id, k.org_id, pay.worker_id, pay.contract_id, k.pay_frequency, pay.tax_code, pay.ni_category, pay.pay_date,
           ${w('worker_id')} is not null, ${workerColumns.join(', ')},
           ${AMOUNTS.map((_, i) => `pay.period_${i}`).join(', ')}, ${AMOUNTS.map((_, i) => `pay.ytd_${i}`).join(', ')}
      from pay
      join k on k.tenant_id = pay.tenant_id and k.contract_id = pay.contract_id
      left join ${tableName(schema, W)} w on w.${ident(W.tenantColumn!)} = pay.tenant_id and ${w('worker_id')} = pay.worker_id
     order by pay.worker_id, pay.tenant_id`;
}

/** Columns before the worker's; the amounts follow the worker's, period first, then year to date. */
const HEAD = 9;
const AMOUNTS_AT = HEAD + WORKER_FIELDS.length;

async function* employees(rows: AsyncIterable<(string | null)[]>, employer: FilingEmployer): AsyncGenerator<FilingEmployee> {
  for await (const r of rows) {
    const [tenantId, orgId, workerId, contractId, payFrequency, taxCode = null, niCategory = null, payDate = null, hasWorker] = r;
    if (hasWorker !== 't') {
      throw new PermanentError(`the hub has payslips of worker ${workerId} (tenant '${tenantId}', contract ${contractId}) under employer ${employer.orgId} but no such worker: the filing would under-report`);
    }
    const v = (i: number) => r[HEAD + i] ?? null;
    const money = (at: number, what: string): Money => {
      const m = {} as Record<keyof Money, number>;
      AMOUNTS.forEach(([key], i) => (m[key] = minorUnits(r[at + i] ?? '0', `worker ${workerId} ${what}.${key}`)));
      return m;
    };
    yield {
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
      period: money(AMOUNTS_AT, 'period'),
      yearToDate: money(AMOUNTS_AT + AMOUNTS.length, 'yearToDate'),
    };
  }
}
