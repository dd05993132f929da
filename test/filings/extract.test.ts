import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { jurisdiction } from '../../jurisdictions/index.ts';
import type { FilingEmployee } from '../../jurisdictions/types.ts';
import { extractFiling } from '../../tasks/filings/extract.ts';
import { findPeriod } from '../../tasks/filings/period.ts';
import { filingHarness, type FilingHarness } from './support.ts';

/**
 * The extract turns hub rows into canonical records: one per worker the employer paid in the tax
 * year up to the period's end, with the period's and the year's money summed exactly.
 */

let h: FilingHarness;
const fps = jurisdiction('gb-rti-fps');
const TENANT = 'northwind-health';

const t = (table: string) => sql.id(h.hubSchema, table);

async function extract(periodId: string, tenant = TENANT) {
  const records: FilingEmployee[] = [];
  const outcome = await extractFiling({
    hub: h.rt.connections.hub(),
    schema: h.hubSchema,
    entities: HUB_ENTITIES,
    jurisdiction: fps,
    tenant,
    period: findPeriod(fps, periodId)!,
    sink: async (_employer, employees) => {
      for await (const e of employees) records.push(e);
      return records.length;
    },
  });
  return { ...outcome, records };
}

/** A payroll sum computed by PostgreSQL, in minor units. */
async function cents(worker: string, column: string, from: string, to: string): Promise<number> {
  const { rows } = await sql<{
    c: string;
  }>`select coalesce(sum(${sql.ref(column)}), 0) * 100 as c from ${t('payroll_results')} where tenant_id = ${TENANT} and worker_id = ${worker} and pay_date between ${from}::date and ${to}::date`.execute(
    h.rt.db,
  );
  return Number(rows[0]!.c);
}

let gbOrg: { org_id: string; tax_id: string; payroll_ref: string; accounts_office_ref: string; postcode: string };

beforeAll(async () => {
  h = await filingHarness({ worker: false });
  gbOrg = (
    await sql<
      typeof gbOrg
    >`select org_id, tax_id, payroll_ref, accounts_office_ref, postcode from ${t('orgs')} where tenant_id = ${TENANT} and country = 'GB'`.execute(h.rt.db)
  ).rows[0]!;
}, 60_000);

afterAll(async () => {
  await h?.close();
});

describe('the filing extract', () => {
  it("reads the tenant's employer in the jurisdiction's country, and nothing for a tenant without one", async () => {
    const before = new Date();
    const { employer, snapshotAt } = await extract('2025-26-M08');
    expect(employer).toMatchObject({
      tenantId: TENANT,
      orgId: gbOrg.org_id,
      country: 'GB',
      taxId: gbOrg.tax_id,
      payrollRef: gbOrg.payroll_ref,
      accountsOfficeRef: gbOrg.accounts_office_ref,
    });
    expect(employer!.address).toMatchObject({ postcode: gbOrg.postcode, country: 'GB' });
    expect(snapshotAt).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z$/);
    expect(new Date(snapshotAt).getTime()).toBeGreaterThanOrEqual(before.getTime() - 1_000);
    const none = await extract('2025-26-M08', 'globex-media');
    expect(none.employer).toBeNull();
    expect(none.records).toEqual([]);
  });

  it("sums each worker's payslips of the period and of the tax year to date, to the cent", async () => {
    const { records } = await extract('2025-26-M08');
    expect(records.length).toBeGreaterThan(20);
    expect(records.map((r) => r.workerId)).toEqual([...records.map((r) => r.workerId)].sort());
    for (const r of records.slice(0, 25)) {
      expect(r).toMatchObject({ tenantId: TENANT, orgId: gbOrg.org_id, payDate: '2025-11-28', payFrequency: 'monthly' });
      expect(r.period.gross, r.workerId).toBe(await cents(r.workerId, 'gross', '2025-11-06', '2025-12-05'));
      expect(r.period.employerSocial).toBe(await cents(r.workerId, 'employer_social', '2025-11-06', '2025-12-05'));
      expect(r.yearToDate.gross).toBe(await cents(r.workerId, 'gross', '2025-04-06', '2025-12-05'));
      expect(r.yearToDate.incomeTax).toBe(await cents(r.workerId, 'income_tax', '2025-04-06', '2025-12-05'));
      expect(r.yearToDate.net).toBe(await cents(r.workerId, 'net', '2025-04-06', '2025-12-05'));
    }
    // Paid in October and November: the year to date holds both payslips.
    const steady = records.find((r) => r.hireDate < '2025-01-01')!;
    expect(steady.yearToDate.gross).toBeGreaterThan(steady.period.gross);
  });

  it('leaves out workers paid nothing in the tax year so far, and those paid by another employer', async () => {
    const { records } = await extract('2025-26-M08');
    const ids = new Set(records.map((r) => r.workerId));
    const { rows } = await sql<{ worker_id: string; why: string }>`
      select w.worker_id, case when w.status = 'terminated' then 'terminated' when w.hire_date > '2025-12-05' then 'hired later' else 'other org' end as why
        from ${t('workers')} w join ${t('contracts')} k on k.tenant_id = w.tenant_id and k.worker_id = w.worker_id
       where w.tenant_id = ${TENANT} and (k.org_id <> ${gbOrg.org_id} or w.status = 'terminated' or w.hire_date > '2025-12-05')`.execute(h.rt.db);
    expect(new Set(rows.map((r) => r.why)).size).toBeGreaterThanOrEqual(2);
    for (const r of rows) expect(ids.has(r.worker_id), `${r.worker_id} (${r.why})`).toBe(false);
  });

  it('keeps exact cents, tabs, newlines and backslashes, and drops a worker whose payslips are all zero', async () => {
    const { records } = await extract('2025-26-M08');
    const [a, b] = records;
    await sql`update ${t('payroll_results')} set gross = 0.29 where tenant_id = ${TENANT} and worker_id = ${a!.workerId} and pay_date = '2025-10-31'`.execute(
      h.rt.db,
    );
    await sql`update ${t('payroll_results')} set gross = 0.58 where tenant_id = ${TENANT} and worker_id = ${a!.workerId} and pay_date = '2025-11-28'`.execute(
      h.rt.db,
    );
    await sql`update ${t('workers')} set address_line2 = ${'Flat 3\tRear\\Annex\nBlock C'} where tenant_id = ${TENANT} and worker_id = ${a!.workerId}`.execute(
      h.rt.db,
    );
    await sql`update ${t('payroll_results')} set gross = 0, income_tax = 0, employee_social = 0, employer_social = 0, net = 0 where tenant_id = ${TENANT} and worker_id = ${b!.workerId}`.execute(
      h.rt.db,
    );
    const again = (await extract('2025-26-M08')).records;
    const a2 = again.find((r) => r.workerId === a!.workerId)!;
    expect(a2.period.gross).toBe(58);
    expect(a2.yearToDate.gross).toBe(87);
    expect(a2.address.line2).toBe('Flat 3\tRear\\Annex\nBlock C');
    expect(again.some((r) => r.workerId === b!.workerId)).toBe(false);
    expect(again).toHaveLength(records.length - 1);
  });
});
