import caT4 from '../../jurisdictions/ca-t4/index.ts';
import type { FilingEmployee, FilingEmployer, Money, RenderInput, Submitter } from '../../jurisdictions/types.ts';

/** Canonical records as the pipeline builds them from the demo hub: an Ontario employer, Q4 2025 payroll. */
export function fixture() {
  const employer: FilingEmployer = {
    tenantId: 'acme',
    orgId: 'O000042',
    legalName: 'Northwind & Partners CA Inc.',
    country: 'CA',
    taxId: '123456782',
    payrollRef: '123456782RP0001',
    accountsOfficeRef: null,
    address: { line1: '100 King St W', line2: 'Suite 5600', city: 'Toronto', region: 'ON', postcode: 'M5X 1C9', country: 'CA' },
  };
  const submitter: Submitter = {
    name: employer.legalName,
    authorityId: null,
    taxId: null,
    address: employer.address,
    contact: { name: 'Hélène Gagné', phone: '+1 (416) 555-0142 ext. 210', email: 'payroll@northwind.example.ca' },
  };
  const period = caT4.periods(new Date('2025-01-01T00:00:00Z'), new Date('2026-01-01T00:00:00Z'))[0]!;
  // Three months of seeded payroll (Oct-Dec 2025): income tax ~20%, employee social 7.6%.
  const money = (gross: number): Money => {
    const incomeTax = Math.round(gross * 0.2);
    const employeeSocial = Math.round(gross * 0.076);
    return { gross, incomeTax, employeeSocial, employerSocial: Math.round(gross * 0.083), net: gross - incomeTax - employeeSocial };
  };
  const worker = (n: number, over: Partial<FilingEmployee>): FilingEmployee => ({
    tenantId: employer.tenantId,
    orgId: employer.orgId,
    workerId: `W${String(n).padStart(6, '0')}`,
    contractId: `K${String(n).padStart(6, '0')}`,
    givenName: 'Oliver',
    familyName: 'Smith',
    birthDate: '1988-04-12',
    gender: 'M',
    nationalId: '464542869',
    nationalIdType: 'SIN',
    address: { line1: '220 Yonge St', line2: null, city: 'Toronto', region: 'ON', postcode: 'M5B 2H1', country: 'CA' },
    hireDate: '2021-03-01',
    terminationDate: null,
    payFrequency: 'monthly',
    taxCode: null,
    niCategory: null,
    payDate: '2025-12-31',
    period: money(2_150_000),
    yearToDate: money(2_150_000),
    ...over,
  });
  const employees = [
    worker(1, {}),
    worker(2, {
      givenName: 'Zoë',
      familyName: 'Côté',
      gender: 'F',
      nationalId: '275643211',
      address: { line1: '1455 boul. René-Lévesque', line2: 'app. 12', city: 'Montréal', region: 'QC', postcode: 'H3B 1X9', country: 'CA' },
      period: money(3_312_500),
    }),
    worker(3, {
      givenName: 'Jürgen',
      familyName: 'Müller',
      nationalId: '712 345 602',
      address: {
        line1: 'The Old Victorian Cotton Exchange Building, 88 Granville St',
        line2: null,
        city: 'Vancouver',
        region: 'BC',
        postcode: 'V6B 2W9',
        country: 'CA',
      },
      period: money(4_025_075),
    }),
    worker(4, { givenName: "D'Arcy", familyName: "O'Brien-Hughes", nationalId: '934567124', period: money(1_187_333) }),
    worker(5, { givenName: 'Seán', familyName: 'Ó Súilleabháin', nationalId: '130692544', period: money(2_780_010) }),
  ];
  return { employer, submitter, period, employees };
}

export async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

export function inputOf(f: ReturnType<typeof fixture>, test = false): RenderInput {
  return { employer: f.employer, submitter: f.submitter, period: f.period, generatedAt: new Date('2026-01-15T09:00:00Z'), test };
}
export const cents = (text: unknown) => Math.round(Number(text ?? '0') * 100);
