import { describe, expect, it } from 'vitest';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import usEfw2 from '../../jurisdictions/us-efw2/index.ts';
import { einProblem } from '../../transforms/identifiers/ein.ts';
import { ssnProblem } from '../../transforms/identifiers/ssn.ts';
import { Mulberry32 } from '../../demo/prng.ts';
import { generateEin, generateSsn } from '../../demo/identifiers.ts';
import { address as seededAddress } from '../../demo/places.ts';
import { ORG, employer, submitter, employee, fixture, period, iterate, sink, renderText, records, pos, cents, rulesOf } from './us-efw2-fixture.ts';

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
