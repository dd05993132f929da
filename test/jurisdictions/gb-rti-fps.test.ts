import { describe, expect, it } from 'vitest';
import fps from '../../jurisdictions/gb-rti-fps/index.ts';
import { parseTaxCode, taxCodeProblem } from '../../jurisdictions/gb-rti-fps/tax-code.ts';
import { ninoProblem } from '../../transforms/identifiers/nino.ts';
import { accountsOfficeRefProblem, splitPayeReference, utrProblem } from '../../transforms/identifiers/paye.ts';
import type { FilingEmployee } from '../../jurisdictions/types.ts';
import { home, employer, submitter, period, employee } from './gb-rti-fps-fixture.ts';

describe('gb-rti-fps calendar', () => {
  it('has monthly tax periods from the 6th to the 5th, paid and due on the last weekday of the month', () => {
    const periods = fps.periods(new Date('2025-10-01T00:00:00Z'), new Date('2026-01-06T00:00:00Z'));
    expect(periods.map((p) => [p.id, p.start, p.end, p.payDate, p.taxYear])).toEqual([
      ['2025-26-M06', '2025-09-06', '2025-10-05', '2025-09-30', '2025-26'],
      ['2025-26-M07', '2025-10-06', '2025-11-05', '2025-10-31', '2025-26'],
      ['2025-26-M08', '2025-11-06', '2025-12-05', '2025-11-28', '2025-26'],
      ['2025-26-M09', '2025-12-06', '2026-01-05', '2025-12-31', '2025-26'],
    ]);
    // End of payday, UK time: BST (UTC+1) in September, GMT in November.
    expect(periods[0]!.deadline.toISOString()).toBe('2025-09-30T22:59:59.999Z');
    expect(periods[2]!.deadline.toISOString()).toBe('2025-11-28T23:59:59.999Z');
    const year = fps.periods(new Date('2026-04-06T00:00:00Z'), new Date('2027-04-06T00:00:00Z'));
    expect(year.map((p) => p.id)).toEqual(Array.from({ length: 12 }, (_, i) => `2026-27-M${String(i + 1).padStart(2, '0')}`));
    expect([year[0]!.start, year[0]!.end, year[11]!.start, year[11]!.end]).toEqual(['2026-04-06', '2026-05-05', '2027-03-06', '2027-04-05']);
  });

  it("puts every calendar month's payday in exactly one period", () => {
    const periods = fps.periods(new Date('2025-01-01T00:00:00Z'), new Date('2028-01-01T00:00:00Z'));
    for (let m = 0; m < 24; m++) {
      const y = 2025 + Math.floor(m / 12);
      const last = new Date(Date.UTC(y, (m % 12) + 1, 0));
      while (last.getUTCDay() === 0 || last.getUTCDay() === 6) last.setUTCDate(last.getUTCDate() - 1);
      const payday = last.toISOString().slice(0, 10);
      expect(periods.filter((p) => p.start <= payday && payday <= p.end).map((p) => p.payDate)).toEqual([payday]);
    }
  });

  it('names files by period', () => {
    expect(fps.fileName(period('2025-26-M08'))).toBe('FPS-2025-26-M08.xml');
  });
});

describe('gb-rti-fps identifiers', () => {
  it('accepts NINOs HMRC issues and says why others are not', () => {
    for (const ok of ['AB123456C', 'JT654321A', 'ZY000001D', 'CE999999B']) expect(ninoProblem(ok)).toBeNull();
    // The FPS sends an unknown suffix as a space (PAYENINOtype: "RN000001A or RN000001(space)").
    expect(ninoProblem('AB123456 ', { blankSuffix: true })).toBeNull();
    const cases: [string, string, RegExp][] = [
      ['DA123456A', 'nino.prefix', /starts with D/],
      ['AO123456A', 'nino.prefix', /O as second letter/],
      ['BG123456A', 'nino.prefix', /never allocates/],
      ['GB123456A', 'nino.prefix', /never allocates/],
      ['NK123456A', 'nino.prefix', /never allocates/],
      ['TN123456A', 'nino.prefix', /never allocates/],
      ['ZZ123456A', 'nino.prefix', /never allocates/],
      ['CR123456A', 'nino.prefix', /administrative prefix CR/],
      ['MW123456A', 'nino.prefix', /administrative prefix MW/],
      ['NC123456A', 'nino.prefix', /administrative prefix NC/],
      ['PP123456A', 'nino.prefix', /administrative prefix PP/],
      ['PY123456A', 'nino.prefix', /administrative prefix PY/],
      ['PZ123456A', 'nino.prefix', /administrative prefix PZ/],
      ['OO123456A', 'nino.prefix', /administrative prefix OO/],
      ['FY123456A', 'nino.prefix', /administrative prefix FY/],
      ['AB123456E', 'nino.suffix', /suffix 'E'/],
      ['AB123456 ', 'nino.suffix', /no suffix/],
      ['AB12345C', 'nino.format', /six digits/],
      ['12AB3456C', 'nino.format', /two capital letters/],
    ];
    for (const [nino, rule, why] of cases) {
      const p = ninoProblem(nino);
      expect(p?.rule, nino).toBe(rule);
      expect(p!.message, nino).toMatch(why);
      expect(p!.message).not.toContain(nino.trim());
      expect(p!.message).toContain(`${'*'.repeat(nino.length - 3)}${nino.slice(-3)}`);
    }
  });

  it('judges every prefix as the FPS schema does, and rejects the administrative ones it lets through', () => {
    const schema =
      /^([ACEHJLMOPRSWXY][A-CEGHJ-NPR-TW-Z]|B[A-CEHJ-NPR-TW-Z]|G[ACEGHJ-NPR-TW-Z]|[KT][A-CEGHJ-MPR-TW-Z]|N[A-CEGHJL-NPR-SW-Z]|Z[A-CEGHJ-NPR-TW-Y])[0-9]{6}[A-D ]$/;
    const letters = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
    const passedBySchemaOnly: string[] = [];
    for (const a of letters) {
      for (const b of letters) {
        const nino = `${a}${b}123456A`;
        const ours = ninoProblem(nino) === null;
        if (ours) expect(schema.test(nino), nino).toBe(true);
        else if (schema.test(nino)) passedBySchemaOnly.push(`${a}${b}`);
      }
    }
    expect(passedBySchemaOnly).toEqual(['CR', 'MW', 'NC', 'PP', 'PY', 'PZ']);
  });

  it('splits the PAYE reference and checks the Accounts Office reference and the UTR', () => {
    expect(splitPayeReference('120/AB45678')).toEqual({ officeNo: '120', payeRef: 'AB45678' });
    expect(splitPayeReference('AB45678')).toBeNull();
    // HMRC's reference checker's own example, and one ending in X.
    expect(accountsOfficeRefProblem('123PW12345678')).toBeNull();
    expect(accountsOfficeRefProblem('123PT7654321X')).toBeNull();
    expect(accountsOfficeRefProblem('123PA00012345')).toMatchObject({ rule: 'aoref.check', message: expect.stringContaining("HMRC's check gives G") });
    expect(accountsOfficeRefProblem('961PS0123456X')).toBeNull();
    expect(accountsOfficeRefProblem('961PD1123456X')).toMatchObject({ rule: 'aoref.check', message: expect.stringContaining('office 961') });
    expect(accountsOfficeRefProblem('123XA00045678')?.rule).toBe('aoref.format');
    expect(accountsOfficeRefProblem('123PA0004567')?.rule).toBe('aoref.format');
    expect(utrProblem('2234567890')).toBeNull();
    expect(utrProblem('1234567890')).toMatchObject({ rule: 'UTR.0', message: expect.stringContaining('first digit should be') });
    expect(utrProblem('223456789')?.rule).toBe('utr.format');
  });

  it('reads tax codes as payroll writes them and rejects codes HMRC does not issue', () => {
    expect(parseTaxCode('S1257L')).toEqual({ code: '1257L', regime: 'S', nonCumulative: false });
    expect(parseTaxCode('c0t')).toEqual({ code: '0T', regime: 'C', nonCumulative: false });
    expect(parseTaxCode('1257L W1')).toEqual({ code: '1257L', regime: null, nonCumulative: true });
    expect(parseTaxCode('K475X')).toEqual({ code: 'K475', regime: null, nonCumulative: true });
    for (const ok of ['1257L', 'BR', '0T', 'NT', 'D0', 'D8', 'K475', '1100Y']) expect(taxCodeProblem(ok), ok).toBeNull();
    for (const bad of ['1257Q', 'K0', 'D9', '1234567L', '0L', '']) expect(taxCodeProblem(bad)?.rule, bad).toBe('taxcode.format');
  });
});

describe('gb-rti-fps validation', () => {
  const p = period('2025-26-M08');

  it('accepts seeded-style records, folding accents', () => {
    for (let n = 0; n < 10; n++) expect(fps.validate(employee(n), p)).toEqual([]);
    expect(fps.validateEmployer(employer(), submitter())).toEqual([]);
  });

  it('rejects bad employer references before anything is filed', () => {
    const bad = { ...employer(), payrollRef: '12/AB45678', accountsOfficeRef: '120PA0004567', taxId: '1234567890' };
    expect(fps.validateEmployer(bad, submitter()).map((v) => [v.record, v.field, v.rule])).toEqual([
      ['O000012', 'payrollRef', 'payeref.office'],
      ['O000012', 'accountsOfficeRef', 'aoref.format'],
      ['O000012', 'taxId', 'UTR.0'],
    ]);
    expect(fps.validateEmployer({ ...employer(), payrollRef: null, accountsOfficeRef: null }, submitter()).map((v) => v.rule)).toEqual([
      'payeref.missing',
      'aoref.missing',
    ]);
  });

  it('names the worker, field and rule of a planted bad record, masking the NINO', () => {
    const v = fps.validate(employee(7, { nationalId: 'BG 12 34 56 A' }), p);
    expect(v).toEqual([{ record: 'W000007', field: 'nationalId', rule: 'nino.prefix', message: expect.stringContaining('******56A') }]);
    expect(v[0]!.message).not.toContain('BG123456A');
  });

  it('rejects names that cannot be written in the FPS character set', () => {
    expect(fps.validate(employee(1, { givenName: '秀英', familyName: 'Иванова' }), p).map((v) => [v.field, v.rule])).toEqual([
      ['givenName', 'name.script'],
      ['familyName', 'name.script'],
    ]);
    expect(fps.validate(employee(1, { familyName: 'Smith Jr.' }), p).map((v) => [v.field, v.rule])).toEqual([['familyName', 'name.charset']]);
    expect(fps.validate(employee(1, { familyName: 'Featherstonehaugh-Cholmondeley-Marjoribanks' }), p).map((v) => v.rule)).toEqual(['name.length']);
  });

  it('enforces HMRC business rules on the fields it files', () => {
    const rules = (over: Partial<FilingEmployee>) => fps.validate(employee(2, over), p).map((v) => `${v.field} ${v.rule}`);
    expect(rules({ gender: null })).toEqual(['gender gender.missing']);
    expect(rules({ niCategory: 'B' })).toEqual(['niCategory NILETTER.0', 'niCategory NILETTER.3']); // employee 2 is M, born 1972
    expect(rules({ niCategory: 'F' })).toEqual(['niCategory NILETTER.2']);
    expect(rules({ niCategory: 'X' })).toEqual([
      'period.employerSocial TOTALEMPLOYERNICONTRIBUTIONS.1',
      'yearToDate.employerSocial TOTALEMPLOYERNICONTRIBUTIONSYEARTODATE.1',
      'period.employeeSocial EMPLOYEESCONTRIBUTIONSONALLEARNINGS.1',
      'yearToDate.employeeSocial EMPLOYEESCONTRIBUTIONSONALLEARNINGSYEARTODATE.1',
    ]);
    expect(rules({ taxCode: '1257Q' })).toEqual(['taxCode taxcode.format']);
    expect(rules({ payFrequency: 'weekly' })).toEqual(['payFrequency payfrequency.unsupported']);
    expect(rules({ payDate: '2025-12-19' })).toEqual(['payDate paydate.period']);
    expect(rules({ payDate: null })).toEqual(['payDate paydate.missing']);
    expect(rules({ birthDate: '1890-01-01' })).toEqual(['birthDate DATEOFBIRTH.0']);
    expect(rules({ birthDate: '2026-01-01' })).toEqual(['birthDate BirthDateType.1']);
    expect(rules({ yearToDate: { ...employee(2).yearToDate, gross: -100 } })).toContain('yearToDate.gross money.range');
    expect(rules({ address: { ...home, line1: 'Llanfairpwllgwyngyllgogerychwyrndrobwllllantysiliogogogoch Business Centre' } })).toEqual([
      'address address.length',
    ]);
    // A country the hub holds that is no ISO code is the worker's reject, never a crash of the whole file.
    for (const country of ['G1', 'ÉÉ', 'ZZ', 'GBR']) expect(rules({ address: { ...home, country } })).toContain('address.country country.code');
    expect(rules({ address: { ...home, country: 'FR', line2: 'Paris' } })).not.toContain('address.country country.code');
  });
});
