import { describe, expect, it } from 'vitest';
import { jurisdiction } from '../../jurisdictions/index.ts';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Violation } from '../../jurisdictions/types.ts';
import { FILING_COUNTRIES, type EmployingCountry } from '../../demo/countries.ts';
import { STREAM, planTenants, workerCore, workerRow } from '../../demo/generate.ts';
import { rngFor } from '../../demo/prng.ts';
import { DEMO_SUBMITTERS, resolveSubmitter } from '../../tasks/filings/submitter.ts';
import { EIN_PREFIXES } from '../../transforms/identifiers/ein.ts';

/**
 * The identifiers the filings carry, judged by the filings themselves: whatever the demo hub
 * generates passes its jurisdiction's record and employer rules, and a value that breaks any one
 * rule is rejected with the record, the field, the rule and a message saying why.
 */

const CODE: Record<'GB' | 'US' | 'CA', string> = { GB: 'gb-rti-fps', US: 'us-efw2', CA: 'ca-t4' };
const ID_FIELDS = new Set(['nationalId', 'nationalIdType', 'taxId', 'payrollRef', 'accountsOfficeRef']);
const identifierViolations = (vs: Violation[]) => vs.filter((v) => ID_FIELDS.has(v.field));

const money = { gross: 400_000, incomeTax: 60_000, employeeSocial: 30_000, employerSocial: 40_000, net: 310_000 };

function periodOf(country: 'GB' | 'US' | 'CA'): FilingPeriod {
  // December 2025: the FPS of tax month 9 and the 2025 annual returns.
  const all = jurisdiction(CODE[country]).periods(new Date('2025-12-01T00:00:00Z'), new Date('2026-01-10T00:00:00Z'));
  return all.find((p) => p.start <= '2025-12-20' && p.end >= '2025-12-20')!;
}

const ADDRESSES = {
  GB: { line1: '12 High Street', line2: 'Flat 3B', city: 'Manchester', region: null, postcode: 'M1 1AE', country: 'GB' },
  US: { line1: '1200 Oak Ave', line2: null, city: 'Austin', region: 'TX', postcode: '78701', country: 'US' },
  CA: { line1: '100 King St W', line2: null, city: 'Toronto', region: 'ON', postcode: 'M5X 1A9', country: 'CA' },
} as const;

function employee(country: 'GB' | 'US' | 'CA', nationalId: string | null, nationalIdType: string, workerId = 'W000000001'): FilingEmployee {
  return {
    tenantId: 'acme',
    orgId: 'O000000001',
    workerId,
    contractId: 'K000000001',
    givenName: 'Olivia',
    familyName: 'Taylor',
    birthDate: '1988-04-17',
    gender: 'F',
    nationalId,
    nationalIdType,
    address: ADDRESSES[country],
    hireDate: '2019-03-01',
    terminationDate: null,
    payFrequency: 'monthly',
    taxCode: country === 'GB' ? '1257L' : null,
    niCategory: country === 'GB' ? 'A' : null,
    payDate: '2025-12-19',
    period: money,
    yearToDate: money,
  };
}

const EMPLOYERS: Record<'GB' | 'US' | 'CA', FilingEmployer> = {
  GB: {
    tenantId: 'acme',
    orgId: 'O000000001',
    legalName: 'Acme UK Ltd',
    country: 'GB',
    taxId: '2234567890',
    payrollRef: '123/AB45678',
    accountsOfficeRef: '123PW12345678',
    address: ADDRESSES.GB,
  },
  US: {
    tenantId: 'acme',
    orgId: 'O000000001',
    legalName: 'Acme Inc',
    country: 'US',
    taxId: '27-1234567',
    payrollRef: null,
    accountsOfficeRef: null,
    address: ADDRESSES.US,
  },
  CA: {
    tenantId: 'acme',
    orgId: 'O000000001',
    legalName: 'Acme Inc',
    country: 'CA',
    taxId: '123456782',
    payrollRef: '123456782RP0001',
    accountsOfficeRef: null,
    address: ADDRESSES.CA,
  },
};

function validateEmployer(country: 'GB' | 'US' | 'CA', employer: FilingEmployer): Violation[] {
  const code = CODE[country];
  return jurisdiction(code).validateEmployer(employer, resolveSubmitter(code, employer, [DEMO_SUBMITTERS]));
}

describe('the demo hub generates only identifiers its jurisdiction accepts', () => {
  it.each(FILING_COUNTRIES)('%s workers: national ids, as seeded and as hired', (country) => {
    const c = country as 'GB' | 'US' | 'CA';
    const j = jurisdiction(CODE[c]);
    const period = periodOf(c);
    const orgs = [{ orgId: 'O000000001', tenantId: 'acme', country: country as EmployingCountry, weight: 1 }];
    const rejected: string[] = [];
    let temporarySins = 0;
    for (let i = 0; i < 20_000; i++) {
      const row = workerRow(rngFor(7, STREAM.person, i), workerCore(rngFor(7, STREAM.core, i), orgs), `W${i}`);
      const id = String(row.national_id);
      if (id.startsWith('9')) temporarySins++;
      for (const v of identifierViolations(j.validate(employee(c, id, String(row.national_id_type), `W${i}`), period)))
        rejected.push(`${id}: ${v.rule} ${v.message}`);
    }
    expect(rejected).toEqual([]);
    // Temporary residents' SINs are among them, and a T4 takes them.
    if (c === 'CA') expect(temporarySins).toBeGreaterThan(0);
  });

  it('employer tax ids, PAYE, Accounts Office and payroll program references of every seed', () => {
    const rejected: string[] = [];
    let checked = 0;
    for (let seed = 0; seed < 300; seed++) {
      for (const plan of planTenants(seed, 4, 0)) {
        for (const org of plan.orgRows) {
          const country = String(org.country);
          if (!(country in CODE)) continue;
          const c = country as 'GB' | 'US' | 'CA';
          const employer: FilingEmployer = {
            ...EMPLOYERS[c],
            orgId: String(org.org_id),
            taxId: String(org.tax_id),
            payrollRef: org.payroll_ref === null ? null : String(org.payroll_ref),
            accountsOfficeRef: org.accounts_office_ref === null ? null : String(org.accounts_office_ref),
          };
          checked++;
          for (const v of identifierViolations(validateEmployer(c, employer))) rejected.push(`${country} ${v.field}: ${v.rule} ${v.message}`);
        }
      }
    }
    expect(checked).toBeGreaterThan(500);
    expect(rejected).toEqual([]);
  });
});

/** The violations of one employee whose national id is `id`, as 'record|field|rule'. */
function employeeRules(country: 'GB' | 'US' | 'CA', id: string, type: string): Violation[] {
  return identifierViolations(jurisdiction(CODE[country]).validate(employee(country, id, type, 'W000000042'), periodOf(country)));
}

describe('a national id that breaks a rule is rejected, naming record, field and rule', () => {
  it.each<[string, string, RegExp]>([
    ['DA 12 34 56 A', 'nino.prefix', /starts with D, a letter HMRC never uses first/],
    ['QQ123456C', 'nino.prefix', /starts with Q/],
    ['AO123456A', 'nino.prefix', /O as second letter/],
    ['AV123456A', 'nino.prefix', /V as second letter/],
    ['BG123456A', 'nino.prefix', /prefix BG, which HMRC never allocates/],
    ['GB123456A', 'nino.prefix', /never allocates/],
    ['KN123456A', 'nino.prefix', /never allocates/],
    ['NK123456A', 'nino.prefix', /never allocates/],
    ['NT123456A', 'nino.prefix', /never allocates/],
    ['TN123456A', 'nino.prefix', /never allocates/],
    ['ZZ123456A', 'nino.prefix', /never allocates/],
    ['CR123456A', 'nino.prefix', /administrative prefix CR \(Account Investigations records\)/],
    ['MW123456A', 'nino.prefix', /administrative prefix MW/],
    ['NC123456A', 'nino.prefix', /administrative prefix NC/],
    ['PP123456A', 'nino.prefix', /administrative prefix PP/],
    ['PY123456A', 'nino.prefix', /administrative prefix PY/],
    ['PZ123456A', 'nino.prefix', /administrative prefix PZ/],
    ['OO123456A', 'nino.prefix', /administrative prefix OO/],
    ['AB123456E', 'nino.suffix', /suffix 'E'; the suffix is A, B, C or D, or a space when unknown/],
    ['AB12345C', 'nino.format', /not two capital letters, six digits and a suffix letter/],
  ])('NINO %s: %s', (nino, rule, why) => {
    const vs = employeeRules('GB', nino, 'NINO');
    expect(vs).toEqual([{ record: 'W000000042', field: 'nationalId', rule, message: expect.stringMatching(why) }]);
    expect(vs[0]!.message).not.toContain(nino.replace(/\s/g, '').slice(0, 6));
  });

  it('an FPS takes a NINO whose suffix is unknown, sent as a space', () => {
    expect(employeeRules('GB', 'AB 12 34 56', 'NINO')).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ['000-12-3456', 'ssn.area', /area 000 is never issued/],
    ['666-12-3456', 'ssn.area', /area 666 is never issued/],
    ['900-12-3456', 'ssn.area', /9xx \(ITIN\/ATIN range\)/],
    ['987-65-4320', 'ssn.area', /9xx/],
    ['123-00-4567', 'ssn.group', /group 00 is never issued/],
    ['123-45-0000', 'ssn.serial', /serial 0000 is never issued/],
    ['078-05-1120', 'ssn.specimen', /specimen number, printed on a 1938 wallet insert/],
    ['219-09-9999', 'ssn.specimen', /1940 Social Security Board pamphlet/],
    ['12-345-6789', 'ssn.format', /nine digits/],
  ])('SSN %s: %s', (ssn, rule, why) => {
    const vs = employeeRules('US', ssn, 'SSN');
    expect(vs).toEqual([{ record: 'W000000042', field: 'nationalId', rule, message: expect.stringMatching(why) }]);
    expect(vs[0]!.message).not.toContain(ssn.replace(/-/g, ''));
  });

  it('EFW2 takes an unknown SSN as zeros', () => {
    expect(employeeRules('US', '', 'SSN')).toEqual([]);
  });

  it.each<[string, string, RegExp]>([
    ['046 454 286', 'sin.first-digit', /starts with 0, which is never assigned/],
    ['845123454', 'sin.first-digit', /starts with 8, which is not used for individuals/],
    ['464542868', 'sin.luhn', /fails the Luhn/],
    ['46454286', 'sin.format', /9 digits/],
  ])('SIN %s: %s', (sin, rule, why) => {
    expect(employeeRules('CA', sin, 'SIN')).toEqual([{ record: 'W000000042', field: 'nationalId', rule, message: expect.stringMatching(why) }]);
  });

  it("a T4 takes a temporary resident's SIN (first digit 9)", () => {
    expect(employeeRules('CA', '934567124', 'SIN')).toEqual([]);
  });
});

describe('an employer reference that breaks a rule stops the filing, naming the org, field and rule', () => {
  const rulesOf = (country: 'GB' | 'US' | 'CA', over: Partial<FilingEmployer>) =>
    identifierViolations(validateEmployer(country, { ...EMPLOYERS[country], ...over })).map((v) => `${v.record}|${v.field}|${v.rule}`);

  it('accepts the valid fixtures', () => {
    for (const c of ['GB', 'US', 'CA'] as const) expect(rulesOf(c, {})).toEqual([]);
  });

  it('EIN: every prefix no IRS campus assigns', () => {
    const never = Array.from({ length: 100 }, (_, n) => String(n).padStart(2, '0')).filter((p) => !EIN_PREFIXES.includes(p));
    expect(never).toEqual(['00', '07', '08', '09', '17', '18', '19', '28', '29', '49', '69', '70', '78', '79', '89', '96', '97']);
    for (const prefix of never) expect(rulesOf('US', { taxId: `${prefix}-1234567` }), prefix).toEqual(['O000000001|taxId|ein.prefix']);
    expect(rulesOf('US', { taxId: '27-123456' })).toEqual(['O000000001|taxId|ein.format']);
  });

  it('BN and the payroll program account', () => {
    expect(rulesOf('CA', { taxId: '123456789', payrollRef: '123456789RP0001' })).toEqual([
      'O000000001|taxId|bn.luhn',
      'O000000001|payrollRef|bn.luhn',
      'submitter|taxId|bn.luhn',
    ]);
    expect(rulesOf('CA', { payrollRef: '123456782RT0001' })).toEqual(['O000000001|payrollRef|bn.program']);
    expect(rulesOf('CA', { payrollRef: '123456782RP0000' })).toEqual(['O000000001|payrollRef|bn.reference']);
    expect(rulesOf('CA', { payrollRef: '12345678RP0001' })).toEqual(['O000000001|payrollRef|bn.format']);
  });

  it('PAYE reference, Accounts Office reference and UTR', () => {
    expect(rulesOf('GB', { payrollRef: '12/AB45678' })).toEqual(['O000000001|payrollRef|payeref.office']);
    expect(rulesOf('GB', { payrollRef: '123/AB456789012' })).toEqual(['O000000001|payrollRef|payeref.length']);
    expect(rulesOf('GB', { payrollRef: '123/AB#45' })).toEqual(['O000000001|payrollRef|payeref.charset']);
    expect(rulesOf('GB', { payrollRef: '123AB45678' })).toEqual(['O000000001|payrollRef|payeref.format']);
    expect(rulesOf('GB', { accountsOfficeRef: '123PA12345678' })).toEqual(['O000000001|accountsOfficeRef|aoref.check']);
    expect(rulesOf('GB', { accountsOfficeRef: '123XW12345678' })).toEqual(['O000000001|accountsOfficeRef|aoref.format']);
    expect(rulesOf('GB', { taxId: '1234567890' })).toEqual(['O000000001|taxId|UTR.0']);
  });
});
