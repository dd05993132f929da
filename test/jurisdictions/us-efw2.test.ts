import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import type { FilingEmployee, FilingEmployer, FilingPeriod, Money, RenderTotals, Submitter, Violation } from '../../jurisdictions/types.ts';
import usEfw2 from '../../jurisdictions/us-efw2/index.ts';
import { einProblem } from '../../transforms/identifiers/ein.ts';
import { ssnProblem } from '../../transforms/identifiers/ssn.ts';
import { LAYOUTS } from '../../jurisdictions/us-efw2/layout.ts';
import { Mulberry32 } from '../../demo/prng.ts';
import { generateEin, generateSsn } from '../../demo/identifiers.ts';
import { address as seededAddress } from '../../demo/places.ts';

// ---------------------------------------------------------------------------------------------
// Fixture: one US employer, its submitter and a handful of employees with realistic figures.

const TENANT = 'northwind-analytics';
const ORG = 'O000000042';

const employer: FilingEmployer = {
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

const submitter: Submitter = {
  name: 'Northwind Analytics US Inc.',
  authorityId: 'NWPAY001',
  taxId: null,
  address: employer.address,
  contact: { name: 'Renée Payroll', phone: '+1 (212) 555-0142', email: 'Payroll@Northwind.example' },
};

const year = (gross: number, incomeTax: number): Money => ({
  gross,
  incomeTax,
  employeeSocial: Math.round(gross * 0.0765),
  employerSocial: Math.round(gross * 0.0765),
  net: gross - incomeTax - Math.round(gross * 0.0765),
});

function employee(n: number, over: Partial<FilingEmployee> = {}): FilingEmployee {
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

function fixture(): FilingEmployee[] {
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

const period: FilingPeriod = usEfw2.periods(new Date('2025-06-01T00:00:00Z'), new Date('2026-06-01T00:00:00Z'))[0]!;

// ---------------------------------------------------------------------------------------------
// Helpers: render into memory or a temp file, slice fields by the publication's positions.

async function* iterate(list: FilingEmployee[]): AsyncGenerator<FilingEmployee> {
  for (const e of list) yield e;
}

function sink(): { out: Writable; text: () => string } {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      chunks.push(Buffer.from(chunk));
      cb();
    },
  });
  return { out, text: () => Buffer.concat(chunks).toString('latin1') };
}

async function renderText(list = fixture(), generatedAt = new Date('2026-01-15T09:00:00Z')): Promise<{ text: string; totals: RenderTotals }> {
  const { out, text } = sink();
  const totals = await usEfw2.render({ employer, submitter, period, generatedAt, test: false }, iterate(list), out);
  return { text: text(), totals };
}

const records = (text: string) => text.split('\r\n').slice(0, -1);
/** Positions as Pub. 42-007 prints them: 1-based, inclusive. */
const pos = (record: string, from: number, to: number) => record.slice(from - 1, to);
const cents = (record: string, from: number, to: number) => Number(pos(record, from, to));

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hubflow-efw2-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function fileOf(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text, 'latin1');
  return path;
}

const rulesOf = (vs: Violation[]) => vs.map((v) => `${v.record}|${v.field}|${v.rule}`);

// ---------------------------------------------------------------------------------------------

describe('us-efw2 calendar', () => {
  it('has one annual period per tax year, due January 31 or the next business day', () => {
    const list = usEfw2.periods(new Date('2024-01-01T00:00:00Z'), new Date('2027-01-01T00:00:00Z'));
    expect(list.map((p) => p.id)).toEqual(['2024', '2025', '2026']);
    expect(list[1]).toMatchObject({ id: '2025', start: '2025-01-01', end: '2025-12-31', payDate: null, taxYear: '2025' });
    // 31 Jan 2025 is a Friday; 31 Jan 2026 a Saturday (-> Mon 2 Feb); 31 Jan 2027 a Sunday (-> Mon 1 Feb).
    expect(list.map((p) => p.deadline.toISOString())).toEqual(['2025-02-01T04:59:59.999Z', '2026-02-03T04:59:59.999Z', '2027-02-02T04:59:59.999Z']);
  });

  it('includes a period only when its last day falls within [from, to)', () => {
    expect(usEfw2.periods(new Date('2025-12-31T00:00:00Z'), new Date('2026-01-01T00:00:00Z')).map((p) => p.id)).toEqual(['2025']);
    expect(usEfw2.periods(new Date('2025-01-01T00:00:00Z'), new Date('2025-12-31T00:00:00Z'))).toEqual([]);
  });
});

describe('us-efw2 file structure (Pub. 42-007 record layouts)', () => {
  it('writes RA, RE, one RW per employee, RT, RF: each exactly 512 bytes and CR LF, ASCII only', async () => {
    const { text } = await renderText();
    expect(text.endsWith('\r\n')).toBe(true);
    expect(/^[\x20-\x7e\r\n]*$/.test(text)).toBe(true);
    expect(text.replace(/\r\n/g, '').includes('\n')).toBe(false);
    const recs = records(text);
    expect(recs.map((r) => r.length)).toEqual(recs.map(() => 512));
    expect(recs.map((r) => r.slice(0, 2))).toEqual(['RA', 'RE', 'RW', 'RW', 'RW', 'RW', 'RW', 'RT', 'RF']);
    expect(Buffer.byteLength(text, 'latin1')).toBe(9 * 514);
  });

  it('puts the RA submitter fields at their positions', async () => {
    const ra = records((await renderText()).text)[0]!;
    expect(pos(ra, 3, 11)).toBe('271234567'); // submitter EIN: the employer files itself, no hyphen
    expect(pos(ra, 12, 19)).toBe('NWPAY001'); // BSO user id
    expect(pos(ra, 20, 28)).toBe(' '.repeat(9)); // vendor code (in-house software) + blank
    expect(pos(ra, 29, 29)).toBe('0'); // not a resubmission
    expect(pos(ra, 36, 37)).toBe('98'); // in-house software
    expect(pos(ra, 38, 94).trimEnd()).toBe('NORTHWIND ANALYTICS US INC.');
    expect(pos(ra, 95, 116).trimEnd()).toBe('SUITE 4800'); // location address = line 2
    expect(pos(ra, 117, 138).trimEnd()).toBe('350 FIFTH AVE'); // delivery address = street
    expect(pos(ra, 161, 162)).toBe('NY'); // derived from ZIP 101xx
    expect(pos(ra, 163, 167)).toBe('10118');
    expect(pos(ra, 215, 216)).toBe('  '); // domestic: no country code
    expect(pos(ra, 396, 422).trimEnd()).toBe('RENEE PAYROLL');
    expect(pos(ra, 423, 437)).toBe('2125550142     '); // left-justified digits, NANP 1 dropped
    expect(pos(ra, 446, 485).trimEnd()).toBe('Payroll@Northwind.example'); // e-mail keeps its case
    expect(pos(ra, 500, 500)).toBe('L'); // self-prepared
    expect(pos(ra, 501, 512)).toBe(' '.repeat(12));
  });

  it('puts the RE employer fields at their positions', async () => {
    const re = records((await renderText()).text)[1]!;
    expect(pos(re, 3, 6)).toBe('2025');
    expect(pos(re, 7, 7)).toBe(' ');
    expect(pos(re, 8, 16)).toBe('271234567');
    expect(pos(re, 26, 26)).toBe('0');
    expect(pos(re, 40, 96).trimEnd()).toBe('NORTHWIND ANALYTICS US INC.');
    expect(pos(re, 141, 162).trimEnd()).toBe('NEW YORK');
    expect(pos(re, 163, 164)).toBe('NY');
    expect(pos(re, 165, 169)).toBe('10118');
    expect(pos(re, 174, 174)).toBe('N'); // kind of employer: none of F/S/T/Y
    expect(pos(re, 219, 219)).toBe('R'); // regular (Form 941)
    expect(pos(re, 221, 221)).toBe('0');
    expect(pos(re, 319, 512)).toBe(' '.repeat(194));
  });

  it('puts the RW employee fields at their positions, names folded to ASCII upper case', async () => {
    const rw = records((await renderText()).text).filter((r) => r.startsWith('RW'));
    const jose = rw[0]!;
    expect(pos(jose, 3, 11)).toBe('121456781'); // SSN without hyphens
    expect(pos(jose, 12, 26)).toBe('JOSE           ');
    expect(pos(jose, 27, 41)).toBe(' '.repeat(15));
    expect(pos(jose, 42, 61)).toBe('GARCIA              ');
    expect(pos(jose, 66, 87).trimEnd()).toBe('APT 12C');
    expect(pos(jose, 88, 109).trimEnd()).toBe('1600 WASHINGTON BLVD');
    expect(pos(jose, 110, 131).trimEnd()).toBe('CHICAGO');
    expect(pos(jose, 132, 133)).toBe('IL');
    expect(pos(jose, 134, 138)).toBe('60612');
    expect(pos(jose, 139, 142)).toBe('3456');
    expect(pos(jose, 188, 198)).toBe('00004912500'); // box 1: $49,125.00 in cents, zero-filled
    expect(pos(jose, 199, 209)).toBe('00000731900'); // box 2
    expect(pos(jose, 210, 220)).toBe('00004912500'); // box 3 (under the wage base)
    expect(pos(jose, 221, 231)).toBe('00000304575'); // box 4: 6.2%
    expect(pos(jose, 232, 242)).toBe('00004912500'); // box 5
    expect(pos(jose, 243, 253)).toBe('00000071231'); // box 6: 1.45% = 712.3125 -> 712.31
    expect(pos(jose, 265, 275)).toBe(' '.repeat(11)); // blank, not zeros
    expect(pos(jose, 276, 484)).toBe('0'.repeat(11 * 6) + ' '.repeat(11) + '0'.repeat(11 * 4) + ' '.repeat(11) + '0'.repeat(11 * 7));
    expect(pos(jose, 486, 489)).toBe('0 00');
    expect(pos(jose, 490, 512)).toBe(' '.repeat(23));

    expect([pos(rw[1]!, 12, 26).trimEnd(), pos(rw[1]!, 42, 61).trimEnd()]).toEqual(['SIOBHAN', 'O SUILLEABHAIN']);
    expect([pos(rw[2]!, 12, 26).trimEnd(), pos(rw[2]!, 42, 61).trimEnd()]).toEqual(['LUKASZ', 'GRZEGORZEWSKI']);
    expect([pos(rw[3]!, 12, 26).trimEnd(), pos(rw[3]!, 42, 61).trimEnd()]).toEqual(['JURGEN', 'STRASSBURGER']);
    expect([pos(rw[4]!, 12, 26).trimEnd(), pos(rw[4]!, 42, 61).trimEnd()]).toEqual(['MARY-KATE', "O'BRIEN"]);
    // A street longer than the 22-character field is cut at the field's width.
    expect(pos(rw[3]!, 88, 109)).toBe('9800 MARTIN LUTHER KIN');
  });

  it('caps social security wages at the wage base and adds 0.9% Medicare over $200,000', async () => {
    const high = records((await renderText()).text).filter((r) => r.startsWith('RW'))[2]!;
    expect(cents(high, 188, 198)).toBe(25_000_000);
    expect(cents(high, 210, 220)).toBe(17_610_000); // $176,100.00
    expect(cents(high, 221, 231)).toBe(1_091_820); // $10,918.20, the 2025 maximum
    expect(cents(high, 232, 242)).toBe(25_000_000);
    expect(cents(high, 243, 253)).toBe(362_500 + 45_000); // 1.45% of 250,000 + 0.9% of 50,000
  });

  it('states RT totals that equal the sums of the RW fields, and RF counts the RW records', async () => {
    const { text, totals } = await renderText();
    const recs = records(text);
    const rw = recs.filter((r) => r.startsWith('RW'));
    const rt = recs.find((r) => r.startsWith('RT'))!;
    const rf = recs.find((r) => r.startsWith('RF'))!;
    const sum = (from: number, to: number) => rw.reduce((s, r) => s + cents(r, from, to), 0);
    expect(pos(rt, 3, 9)).toBe('0000005');
    expect(cents(rt, 10, 24)).toBe(sum(188, 198)); // wages
    expect(cents(rt, 25, 39)).toBe(sum(199, 209)); // federal income tax
    expect(cents(rt, 40, 54)).toBe(sum(210, 220)); // social security wages
    expect(cents(rt, 55, 69)).toBe(sum(221, 231)); // social security tax
    expect(cents(rt, 70, 84)).toBe(sum(232, 242)); // Medicare wages
    expect(cents(rt, 85, 99)).toBe(sum(243, 253)); // Medicare tax
    expect(pos(rt, 115, 129)).toBe(' '.repeat(15));
    expect(pos(rt, 295, 309)).toBe('0'.repeat(15)); // code DD sits before code C in RT
    expect(pos(rt, 415, 512)).toBe(' '.repeat(98));
    expect(pos(rf, 3, 7)).toBe('     ');
    expect(pos(rf, 8, 16)).toBe('000000005');
    expect(pos(rf, 17, 512)).toBe(' '.repeat(496));

    expect(totals.records).toBe(5);
    expect(totals.money.wages).toBe(sum(188, 198));
    expect(totals.money.socialSecurityTax).toBe(sum(221, 231));
    expect(totals.money.medicareTax).toBe(sum(243, 253));
    expect(totals.money.wages).toBe(fixture().reduce((s, e) => s + e.period.gross, 0));
  });

  it('re-renders byte-identically, whatever the time of rendering', async () => {
    const a = await renderText();
    await new Promise((r) => setTimeout(r, 5));
    const b = await renderText();
    expect(Buffer.from(b.text, 'latin1').equals(Buffer.from(a.text, 'latin1'))).toBe(true);
    expect(b.totals).toEqual(a.totals);
  });

  it('throws TenantViolationError at a record of another tenant, and writes nothing of it', async () => {
    const foreign = employee(9, { tenantId: 'globex', orgId: 'O000000077', givenName: 'Intruder', familyName: 'Record', nationalId: '777-77-7077' });
    const list = [...fixture().slice(0, 2), foreign, ...fixture().slice(2)];
    const { out, text } = sink();
    await expect(usEfw2.render({ employer, submitter, period, generatedAt: new Date(0), test: false }, iterate(list), out)).rejects.toBeInstanceOf(
      TenantViolationError,
    );
    expect(text()).not.toContain('INTRUDER');
    expect(text()).not.toContain('777777077');
  });

  it('fails on a record that skipped validation instead of writing it, naming the worker but not the SSN', async () => {
    const { out } = sink();
    const bad = employee(7, { workerId: 'W000000777', nationalId: '123-45-678' });
    const run = usEfw2.render({ employer, submitter, period, generatedAt: new Date(0), test: false }, iterate([bad]), out);
    await expect(run).rejects.toThrow(/worker W000000777: EFW2 RW ssn \(3-11\): '\*+678' is not digits/);
  });

  it('refuses to render a tax year whose layout it does not know', async () => {
    const p2026 = usEfw2.periods(new Date('2026-06-01T00:00:00Z'), new Date('2027-06-01T00:00:00Z'))[0]!;
    const { out } = sink();
    await expect(usEfw2.render({ employer, submitter, period: p2026, generatedAt: new Date(0), test: false }, iterate(fixture()), out)).rejects.toThrow(
      /tax year 2026/,
    );
  });
});

describe('us-efw2 identifier rules', () => {
  it('accepts SSNs SSA can issue and rejects area 000/666/9xx, group 00, serial 0000', () => {
    for (const ok of ['123456789', '001010001', '665121234', '667121234', '899991234']) expect(ssnProblem(ok)).toBeNull();
    expect(ssnProblem('000121234')?.rule).toBe('ssn.area');
    expect(ssnProblem('666121234')?.rule).toBe('ssn.area');
    expect(ssnProblem('900121234')?.rule).toBe('ssn.area');
    expect(ssnProblem('999121234')?.rule).toBe('ssn.area');
    expect(ssnProblem('123001234')?.rule).toBe('ssn.group');
    expect(ssnProblem('123450000')?.rule).toBe('ssn.serial');
    expect(ssnProblem('12345678')?.rule).toBe('ssn.format');
    expect(ssnProblem('12345678A')?.rule).toBe('ssn.format');
  });

  it('accepts EINs with an IRS-assigned prefix and rejects the others', () => {
    for (const ok of ['010000001', '271234567', '453333333', '980000000', '991234567']) expect(einProblem(ok)).toBeNull();
    for (const prefix of ['00', '07', '08', '09', '17', '18', '19', '28', '29', '49', '69', '70', '78', '79', '89', '96', '97']) {
      expect(einProblem(`${prefix}1234567`)?.rule, prefix).toBe('ein.prefix');
    }
    expect(einProblem('27123456')?.rule).toBe('ein.format');
  });

  it('accepts the identifiers and US addresses the demo hub generates', () => {
    const rng = new Mulberry32(2025);
    for (let i = 0; i < 500; i++) {
      const e = employee(1, { nationalId: generateSsn(rng), address: { ...seededAddress(rng, 'US'), country: 'US' } });
      expect(usEfw2.validate(e, period), `${e.nationalId} ${JSON.stringify(e.address)}`).toEqual([]);
      expect(usEfw2.validateEmployer({ ...employer, taxId: generateEin(rng) }, submitter)).toEqual([]);
    }
  });

  it('reports a bad SSN on the worker and field, without printing the full number', () => {
    const vs = usEfw2.validate(employee(1, { workerId: 'W000000666', nationalId: '666-12-3456' }), period);
    expect(rulesOf(vs)).toEqual(['W000000666|nationalId|ssn.area']);
    expect(vs[0]!.message).toContain('456');
    expect(vs[0]!.message).not.toMatch(/666-?12-?3456/);
    const typed = usEfw2.validate(employee(1, { nationalIdType: 'SIN', nationalId: '046454286' }), period);
    expect(rulesOf(typed)).toEqual(['W000001001|nationalIdType|ssn.type']);
    const format = usEfw2.validate(employee(1, { nationalId: '12-345-6789' }), period);
    expect(rulesOf(format)).toEqual(['W000001001|nationalId|ssn.format']);
    expect(format[0]!.message).not.toContain('12-345-6789');
  });

  it('reports employer and submitter identifiers that SSA would reject', () => {
    expect(rulesOf(usEfw2.validateEmployer({ ...employer, taxId: '07-1234567' }, submitter))).toEqual([`${ORG}|taxId|ein.prefix`]);
    expect(rulesOf(usEfw2.validateEmployer({ ...employer, taxId: '271234567X' }, submitter))).toEqual([`${ORG}|taxId|ein.format`]);
    expect(rulesOf(usEfw2.validateEmployer(employer, { ...submitter, authorityId: null }))).toEqual(['submitter|authorityId|bso.userId']);
    expect(rulesOf(usEfw2.validateEmployer(employer, { ...submitter, authorityId: 'NWPAY01' }))).toEqual(['submitter|authorityId|bso.userId']);
    expect(rulesOf(usEfw2.validateEmployer(employer, { ...submitter, taxId: '89-1234567' }))).toEqual(['submitter|taxId|ein.prefix']);
    expect(rulesOf(usEfw2.validateEmployer(employer, { ...submitter, contact: { ...submitter.contact, email: 'payroll' } }))).toEqual([
      'submitter|contact.email|contact.email',
    ]);
  });
});

describe('us-efw2 record rules', () => {
  it('rejects names with no Latin letters and names with characters SSA does not take', () => {
    expect(rulesOf(usEfw2.validate(employee(1, { givenName: '芳', familyName: '王' }), period))).toEqual([
      'W000001001|givenName|name.latin',
      'W000001001|familyName|name.latin',
    ]);
    expect(rulesOf(usEfw2.validate(employee(1, { givenName: 'Мария' }), period))).toEqual(['W000001001|givenName|name.latin']);
    const digits = usEfw2.validate(employee(1, { familyName: 'Smith 3rd' }), period);
    expect(rulesOf(digits)).toEqual(['W000001001|familyName|name.charset']);
    expect(digits[0]!.message).toContain("'3'");
  });

  it('checks US addresses for a state and a ZIP code', () => {
    const base = employee(1).address;
    expect(rulesOf(usEfw2.validate(employee(1, { address: { ...base, region: 'XX' } }), period))).toEqual(['W000001001|address.region|address.state']);
    expect(rulesOf(usEfw2.validate(employee(1, { address: { ...base, postcode: '7870' } }), period))).toEqual(['W000001001|address.postcode|address.zip']);
    expect(rulesOf(usEfw2.validate(employee(1, { address: { ...base, region: null, postcode: '00000' } }), period))).toEqual([
      'W000001001|address.region|address.state',
    ]);
    expect(rulesOf(usEfw2.validate(employee(1, { address: { ...base, line1: '  ' } }), period))).toEqual(['W000001001|address.line1|efw2.required']);
    expect(rulesOf(usEfw2.validate(employee(1, { address: { ...base, country: 'JP', region: null, postcode: '100-0001' } }), period))).toEqual([
      'W000001001|address.country|address.country',
    ]);
  });

  it('rejects amounts EFW2 cannot carry and years without a layout', () => {
    const m = (gross: number, incomeTax = 0) => ({ period: year(gross, incomeTax) });
    expect(rulesOf(usEfw2.validate(employee(1, m(-100)), period))).toEqual(['W000001001|period.gross|efw2.amount.negative']);
    expect(rulesOf(usEfw2.validate(employee(1, m(100_000_000_000)), period))).toEqual(['W000001001|period.gross|efw2.amount.width']);
    expect(rulesOf(usEfw2.validate(employee(1, m(100.5)), period))).toEqual(['W000001001|period.gross|efw2.amount.integer']);
    expect(rulesOf(usEfw2.validate(employee(1, m(0)), period))).toEqual(['W000001001|period.gross|efw2.amount.none']);
    const p2026 = usEfw2.periods(new Date('2026-06-01T00:00:00Z'), new Date('2027-06-01T00:00:00Z'))[0]!;
    expect(rulesOf(usEfw2.validate(employee(1), p2026))).toEqual(['W000001001|taxYear|efw2.taxYear']);
  });

  it('passes every record of the fixture', () => {
    for (const e of fixture()) expect(usEfw2.validate(e, period)).toEqual([]);
    expect(usEfw2.validateEmployer(employer, submitter)).toEqual([]);
  });
});

describe('us-efw2 validateFile', () => {
  let good: string;
  beforeAll(async () => {
    good = (await renderText()).text;
  });

  const broken = async (name: string, edit: (recs: string[]) => string[] | string) => {
    const out = edit(records(good));
    return usEfw2.validateFile(await fileOf(name, typeof out === 'string' ? out : `${out.join('\r\n')}\r\n`));
  };
  const put = (record: string, start: number, text: string) => record.slice(0, start - 1) + text + record.slice(start - 1 + text.length);

  it('finds nothing wrong in a rendered file and states the same totals the renderer returned', async () => {
    const { totals } = await renderText();
    const result = await usEfw2.validateFile(await fileOf('good.txt', good));
    expect(result.violations).toEqual([]);
    expect(result.totals).toEqual(totals);
  });

  it('reports a record of the wrong length and a missing CR', async () => {
    const short = await broken('short.txt', (r) => r.map((x, i) => (i === 3 ? x.slice(0, 511) : x)));
    expect(rulesOf(short.violations)).toEqual(['record 4 (RW)|recordIdentifier|efw2.length']);
    expect(short.violations[0]!.message).toContain('511 bytes');
    const lf = await broken('lf.txt', (r) => `${r.slice(0, 2).join('\r\n')}\n${r.slice(2).join('\r\n')}\r\n`);
    expect(rulesOf(lf.violations)).toEqual(['record 2 (RE)|recordIdentifier|efw2.crlf']);
  });

  it('reports RT totals and RF counts that disagree with the RW records', async () => {
    const { violations } = await broken('totals.txt', (r) =>
      r.map((x) => (x.startsWith('RT') ? put(x, 10, '000000000000001') : x.startsWith('RF') ? put(x, 8, '000000006') : x)),
    );
    expect(rulesOf(violations)).toEqual(['record 8 (RT)|wages|efw2.totals', 'record 9 (RF)|numberOfRw|efw2.totals']);
    expect(violations[0]!.message).toMatch(/states 0\.01; the 5 RW records since the RE sum to 402609\.56/);
    expect(violations[1]!.message).toContain('states 6 RW records; the file has 5');
  });

  it('reports a tampered RW money field both in the record and in the RT that no longer sums', async () => {
    const { violations } = await broken('money.txt', (r) => r.map((x, i) => (i === 2 ? put(x, 188, '-0004912500') : x)));
    expect(rulesOf(violations)).toEqual(['record 3 (RW)|wages|efw2.money', 'record 8 (RT)|wages|efw2.totals']);
  });

  it('reports identifier, case, blank-field and code violations by record and field', async () => {
    const { violations } = await broken('fields.txt', (r) =>
      r.map((x, i) => {
        if (i === 1) return put(x, 8, '07'); // RE EIN prefix 07
        if (i === 2) return put(put(x, 3, '666'), 12, 'Jose'); // RW SSN area 666, lower case
        if (i === 3) return put(x, 265, '00000000000'); // RW blank field filled with zeros
        if (i === 4) return put(x, 486, '2'); // statutory employee indicator
        return x;
      }),
    );
    expect(rulesOf(violations)).toEqual([
      'record 2 (RE)|ein|ein.prefix',
      'record 3 (RW)|firstName|efw2.case',
      'record 3 (RW)|ssn|ssn.area',
      'record 4 (RW)|blank|efw2.blank',
      'record 5 (RW)|statutoryEmployeeIndicator|efw2.code',
    ]);
    const ssn = violations.find((v) => v.rule === 'ssn.area')!;
    expect(ssn.message).not.toContain('666456781');
    expect(ssn.message).toContain('781');
  });

  it('reports records out of order, unknown records and a missing RF', async () => {
    const swapped = await broken('order.txt', (r) => [r[0]!, r[2]!, r[1]!, ...r.slice(3)]);
    expect(rulesOf(swapped.violations)).toContain('record 2 (RW)|recordIdentifier|efw2.order');
    const unknown = await broken('unknown.txt', (r) => r.map((x, i) => (i === 4 ? `RX${x.slice(2)}` : x)));
    expect(rulesOf(unknown.violations)).toEqual([
      'record 5|recordIdentifier|efw2.recordType',
      'record 8 (RT)|numberOfRw|efw2.totals',
      'record 8 (RT)|wages|efw2.totals',
      'record 8 (RT)|federalIncomeTax|efw2.totals',
      'record 8 (RT)|socialSecurityWages|efw2.totals',
      'record 8 (RT)|socialSecurityTax|efw2.totals',
      'record 8 (RT)|medicareWages|efw2.totals',
      'record 8 (RT)|medicareTax|efw2.totals',
      'record 9 (RF)|numberOfRw|efw2.totals',
    ]);
    const noRf = await broken('no-rf.txt', (r) => r.slice(0, -1));
    expect(rulesOf(noRf.violations)).toEqual(['file|recordIdentifier|efw2.order']);
    expect(noRf.violations[0]!.message).toContain('no RF record');
  });

  it('reports a non-ASCII byte and a file without a final CR LF', async () => {
    const accented = await broken('latin1.txt', (r) => r.map((x, i) => (i === 2 ? put(x, 12, 'JOSÉ') : x)));
    expect(rulesOf(accented.violations)).toEqual(['record 3 (RW)|firstName|efw2.charset']);
    const unterminated = await broken('unterminated.txt', (r) => r.join('\r\n'));
    expect(rulesOf(unterminated.violations)).toEqual(['record 9 (RF)|recordIdentifier|efw2.crlf']);
  });

  it('reports an empty file and a file that is not made of lines at all', async () => {
    const empty = await usEfw2.validateFile(await fileOf('empty.txt', ''));
    expect(rulesOf(empty.violations)).toEqual(['file|recordIdentifier|efw2.order']);
    expect(empty.totals).toMatchObject({ records: 0 });
    const blob = await usEfw2.validateFile(await fileOf('blob.txt', 'RA'.padEnd(150_000, 'X')));
    expect(blob.violations.filter((v) => v.rule === 'efw2.crlf').map((v) => v.record)).toEqual(['record 1 (RA)', 'record 2', 'record 3']);
    expect(blob.violations.some((v) => v.rule === 'efw2.length' && v.message.includes('65536 bytes'))).toBe(true);
  });

  it('checks a file written elsewhere, with RO and RU records, against the layout', async () => {
    // Built from the publication's positions by hand, not by the plugin's writer.
    const blank = ' '.repeat(512);
    const rec = (id: string, ...parts: [number, string][]) => parts.reduce((r, [at, text]) => put(r, at, text), put(blank, 1, id));
    const ra = rec(
      'RA',
      [3, '453333333'],
      [12, 'ACME0001'],
      [29, '0'],
      [36, '99'],
      [20, '1234'],
      [38, 'ACME PAYROLL SERVICES LLC'],
      [117, '1 MAIN ST'],
      [139, 'BOSTON'],
      [161, 'MA'],
      [163, '02108'],
      [217, 'ACME PAYROLL SERVICES LLC'],
      [296, '1 MAIN ST'],
      [318, 'BOSTON'],
      [340, 'MA'],
      [342, '02108'],
      [396, 'JANE DOE'],
      [423, '6175550100'],
      [446, 'jane@acme.example'],
      [500, 'S'],
    );
    const re = rec(
      'RE',
      [3, '2025'],
      [8, '043333333'],
      [26, '0'],
      [40, 'BEACON HILL BAKERY INC'],
      [119, '12 CHARLES ST'],
      [141, 'BOSTON'],
      [163, 'MA'],
      [165, '02114'],
      [174, 'N'],
      [219, 'R'],
      [221, '0'],
    );
    const money = (n: number, width = 11) => String(n).padStart(width, '0');
    const RW_MONEY = [188, 199, 210, 221, 232, 243, 254, 276, 287, 298, 309, 320, 331, 353, 364, 375, 386, 408, 419, 430, 441, 452, 463, 474];
    const rw = (ssn: string, first: string, last: string, wages: number) => {
      // Codes C (group-term life, 408) and DD (health coverage, 463) too: RT has them in the other order.
      const boxes: Record<number, number> = {
        188: wages,
        199: wages / 10,
        210: wages,
        221: Math.round(wages * 0.062),
        232: wages,
        243: Math.round(wages * 0.0145),
        408: 12_000,
        463: 650_000,
      };
      return rec(
        'RW',
        [3, ssn],
        [12, first],
        [42, last],
        [88, '5 PARK ST'],
        [110, 'BOSTON'],
        [132, 'MA'],
        [134, '02116'],
        ...RW_MONEY.map((at) => [at, money(boxes[at] ?? 0)] as [number, string]),
        [486, '0'],
        [488, '1'],
        [489, '0'],
      );
    };
    const w1 = rw('012345678', 'ANNE', 'BAKER', 5_200_000);
    const w2 = rw('023456789', 'LUIS', 'MORALES', 3_900_000);
    const ro = rec(
      'RO',
      ...[12, 23, 34, 45, 56, 67, 78, 89, 111, 122, 133, 144, 275, 286, 297, 308, 319, 330, 341, 363, 374].map(
        (at) => [at, money(at === 12 ? 45_000 : 0)] as [number, string],
      ),
    );
    const total = (n: number) => money(n, 15);
    const rt = rec(
      'RT',
      [3, '0000002'],
      [10, total(9_100_000)],
      [25, total(910_000)],
      [40, total(9_100_000)],
      [55, total(322_400 + 241_800)],
      [70, total(9_100_000)],
      [85, total(75_400 + 56_550)],
      [295, total(1_300_000)],
      [310, total(24_000)],
      ...[100, 130, 145, 160, 175, 190, 205, 235, 250, 265, 280, 325, 340, 355, 370, 385, 400].map((at) => [at, total(0)] as [number, string]),
    );
    const ru = rec(
      'RU',
      [3, '0000001'],
      ...[10, 25, 40, 55, 70, 85, 100, 115, 145, 160, 175, 190, 355, 370, 385, 400, 415, 430, 445, 460, 475].map(
        (at) => [at, total(at === 10 ? 45_000 : 0)] as [number, string],
      ),
    );
    const rf = rec('RF', [8, '000000002']);
    const file = [ra, re, w1, ro, w2, rt, ru, rf];
    expect(file.every((r) => r.length === 512)).toBe(true);

    const ok = await usEfw2.validateFile(await fileOf('third-party.txt', `${file.join('\r\n')}\r\n`));
    expect(ok.violations).toEqual([]);
    expect(ok.totals.records).toBe(2);
    expect(ok.totals.money.wages).toBe(9_100_000);
    expect(ok.totals.money.employerHealthCoverage).toBe(1_300_000);
    expect(ok.totals.money.groupTermLife).toBe(24_000);

    const badRu = [...file];
    badRu[6] = put(ru, 10, total(40_000));
    const wrong = await usEfw2.validateFile(await fileOf('third-party-bad.txt', `${badRu.join('\r\n')}\r\n`));
    expect(rulesOf(wrong.violations)).toEqual(['record 7 (RU)|allocatedTips|efw2.totals']);
    const noRu = await usEfw2.validateFile(await fileOf('third-party-no-ru.txt', `${file.filter((r) => !r.startsWith('RU')).join('\r\n')}\r\n`));
    expect(rulesOf(noRu.violations)).toEqual(['record 7 (RF)|recordIdentifier|efw2.order']);
  });

  it('has layout tables that tile positions 1-512 without gap or overlap', () => {
    for (const layout of Object.values(LAYOUTS)) {
      let next = 1;
      for (const f of layout.fields) {
        expect(f.start, `${layout.type} ${f.name}`).toBe(next);
        next += f.length;
      }
      expect(next, layout.type).toBe(513);
    }
  });
});
