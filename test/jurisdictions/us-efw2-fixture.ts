import { Writable } from 'node:stream';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Money, RenderTotals, Submitter, Violation } from '../../jurisdictions/types.ts';
import usEfw2 from '../../jurisdictions/us-efw2/index.ts';

// ---------------------------------------------------------------------------------------------
// Fixture: one US employer, its submitter and a handful of employees with realistic figures.

export const TENANT = 'northwind-analytics';
export const ORG = 'O000000042';

export const employer: FilingEmployer = {
  tenantId: TENANT,
  orgId: ORG,
  legalName: 'Northwind Analytics US Inc.',
  country: 'US',
  taxId: '27-1234567',
  payrollRef: null,
  accountsOfficeRef: null,
  // The hub's org addresses have no region: the state comes from the ZIP code.
  address: { line1: '350 Fifth Ave', line2: 'Suite 4800', city: 'New York', region: null, postcode: '10118', country: 'US' },
};

export const submitter: Submitter = {
  name: 'Northwind Analytics US Inc.',
  authorityId: 'NWPAY001',
  taxId: null,
  address: employer.address,
  contact: { name: 'Renée Payroll', phone: '+1 (212) 555-0142', email: 'Payroll@Northwind.example' },
};

export const year = (gross: number, incomeTax: number): Money => ({
  gross,
  incomeTax,
  employeeSocial: Math.round(gross * 0.0765),
  employerSocial: Math.round(gross * 0.0765),
  net: gross - incomeTax - Math.round(gross * 0.0765),
});

export function employee(n: number, over: Partial<FilingEmployee> = {}): FilingEmployee {
  const money = year(4_812_500 + n * 100_000, 721_900 + n * 10_000);
  return {
    tenantId: TENANT,
    orgId: ORG,
    workerId: `W00000${1000 + n}`,
    contractId: `K00000${1000 + n}`,
    givenName: 'Olivia',
    familyName: 'Taylor',
    birthDate: '1988-04-17',
    gender: 'F',
    nationalId: `${String(120 + n).padStart(3, '0')}-45-${String(6780 + n)}`,
    nationalIdType: 'SSN',
    address: { line1: `${1200 + n} Oak Ave`, line2: null, city: 'Austin', region: 'TX', postcode: '78701', country: 'US' },
    hireDate: '2019-03-01',
    terminationDate: null,
    payFrequency: 'monthly',
    taxCode: null,
    niCategory: null,
    payDate: '2025-12-31',
    period: money,
    yearToDate: money,
    ...over,
  };
}

export function fixture(): FilingEmployee[] {
  return [
    employee(1, {
      givenName: 'José',
      familyName: 'García',
      address: { line1: '1600 Washington Blvd', line2: 'Apt 12C', city: 'Chicago', region: 'IL', postcode: '60612-3456', country: 'US' },
    }),
    employee(2, { givenName: 'Siobhán', familyName: 'Ó Súilleabháin' }),
    // Above the 2025 social security wage base ($176,100) and the $200,000 additional Medicare threshold.
    employee(3, { givenName: 'Łukasz', familyName: 'Grzegorzewski', period: year(25_000_000, 6_100_000), yearToDate: year(25_000_000, 6_100_000) }),
    employee(4, {
      givenName: 'Jürgen',
      familyName: 'Straßburger',
      address: { line1: '9800 Martin Luther King Jr Blvd', line2: null, city: 'San Francisco', region: 'CA', postcode: '94103', country: 'US' },
    }),
    employee(5, { givenName: 'Mary-Kate', familyName: "O'Brien", period: year(123_456, 0), yearToDate: year(123_456, 0) }),
  ];
}

export const period: FilingPeriod = usEfw2.periods(new Date('2025-06-01T00:00:00Z'), new Date('2026-06-01T00:00:00Z'))[0]!;

// ---------------------------------------------------------------------------------------------
// Helpers: render into memory or a temp file, slice fields by the publication's positions.

export async function* iterate(list: FilingEmployee[]): AsyncGenerator<FilingEmployee> {
  for (const e of list) yield e;
}

export function sink(): { out: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { out, text: () => Buffer.concat(chunks).toString('latin1') };
}

export async function renderText(list = fixture(), generatedAt = new Date('2026-01-15T09:00:00Z')): Promise<{ text: string; totals: RenderTotals }> {
  const { out, text } = sink();
  const totals = await usEfw2.render({ employer, submitter, period, generatedAt, test: false }, iterate(list), out);
  return { text: text(), totals };
}

export const records = (text: string) => text.split('\r\n').slice(0, -1);
/** Positions as Pub. 42-007 prints them: 1-based, inclusive. */
export const pos = (record: string, from: number, to: number) => record.slice(from - 1, to);
export const cents = (record: string, from: number, to: number) => Number(pos(record, from, to));

export const rulesOf = (vs: Violation[]) => vs.map((v) => `${v.record}|${v.field}|${v.rule}`);
// ---------------------------------------------------------------------------------------------
