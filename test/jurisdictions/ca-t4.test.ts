import { describe, expect, it } from 'vitest';
import caT4 from '../../jurisdictions/ca-t4/index.ts';
import { fold } from '../../jurisdictions/ca-t4/charset.ts';
import { bn9Problem, payrollAccountProblem } from '../../transforms/identifiers/bn.ts';
import { sinProblem } from '../../transforms/identifiers/sin.ts';
import { splitSocial } from '../../jurisdictions/ca-t4/mapping.ts';
import type { FilingEmployee, FilingEmployer, Submitter } from '../../jurisdictions/types.ts';
import { fixture } from './ca-t4-fixture.ts';

describe('ca-t4 calendar', () => {
  it('files once per calendar year, due the last day of February, moved off weekends', () => {
    const periods = caT4.periods(new Date('2024-06-01T00:00:00Z'), new Date('2027-06-01T00:00:00Z'));
    expect(periods.map((p) => [p.id, p.start, p.end, p.taxYear, p.payDate])).toEqual([
      ['2024', '2024-01-01', '2024-12-31', '2024', null],
      ['2025', '2025-01-01', '2025-12-31', '2025', null],
      ['2026', '2026-01-01', '2026-12-31', '2026', null],
    ]);
    // 28 Feb 2025 is a Friday; 28 Feb 2026 a Saturday (due Monday 2 March); 28 Feb 2027 a Sunday.
    // The deadline is the end of the due day in Ottawa (UTC-5 in winter).
    expect(periods.map((p) => p.deadline.toISOString())).toEqual(['2025-03-01T04:59:59.999Z', '2026-03-03T04:59:59.999Z', '2027-03-02T04:59:59.999Z']);
  });

  it('takes a year when its last day falls within [from, to)', () => {
    expect(caT4.periods(new Date('2025-12-31T00:00:00Z'), new Date('2026-01-01T00:00:00Z')).map((p) => p.id)).toEqual(['2025']);
    expect(caT4.periods(new Date('2025-01-01T00:00:00Z'), new Date('2025-12-31T00:00:00Z'))).toEqual([]);
    expect(caT4.fileName(caT4.periods(new Date('2025-06-01'), new Date('2026-06-01'))[0]!)).toBe('T4-2025.xml');
  });
});

describe('ca-t4 identifiers', () => {
  it('accepts Luhn-valid SINs, temporary (9) ones and typed spacing', () => {
    for (const sin of ['464542869', '275643211', '712345602', '130692544', '934567124', '464 542 869', '464-542-869']) expect(sinProblem(sin), sin).toBeNull();
  });

  it('rejects SINs by rule and never prints them in full', () => {
    const cases: [string, string][] = [
      ['464542868', 'sin.luhn'],
      ['845123454', 'sin.first-digit'], // passes Luhn, but 8 is not used for individuals
      ['046454286', 'sin.first-digit'], // passes Luhn, but 0 is never assigned
      ['46454286', 'sin.format'],
      ['46454286A', 'sin.format'],
    ];
    for (const [sin, rule] of cases) {
      const problem = sinProblem(sin);
      expect(problem?.rule, sin).toBe(rule);
      expect(problem?.message).not.toContain(sin);
      expect(problem?.message).toContain(`******${sin.slice(-3)}`.slice(-sin.length));
    }
  });

  it('checks business numbers and payroll program accounts', () => {
    expect(bn9Problem('123456782')).toBeNull();
    expect(bn9Problem('123456789')?.rule).toBe('bn.luhn');
    expect(payrollAccountProblem('123456782RP0001')).toBeNull();
    expect(payrollAccountProblem('123456789RP0001')?.rule).toBe('bn.luhn');
    expect(payrollAccountProblem('123456782RT0001')?.rule).toBe('bn.program');
    expect(payrollAccountProblem('123456782RP0000')?.rule).toBe('bn.reference');
    expect(payrollAccountProblem('12345678RP0001')?.rule).toBe('bn.format');
  });

  it('keeps French accents, folds other Latin accents and refuses other scripts', () => {
    expect(fold('Marie-Ève Côté', 'name')).toEqual({ text: 'Marie-Ève Côté', rejected: [] });
    expect(fold('Jürgen Großmann-Ødegård', 'name')).toEqual({ text: 'Jurgen Grossmann-Odegard', rejected: [] });
    expect(fold('Иванова', 'name').rejected).toEqual(['И', 'в', 'а', 'н', 'о']);
    expect(fold('王', 'name').rejected).toEqual(['王']);
  });
});

describe('ca-t4 record rules', () => {
  it('passes the fixture employer, submitter and employees', () => {
    const f = fixture();
    expect(caT4.validateEmployer(f.employer, f.submitter)).toEqual([]);
    for (const e of f.employees) expect(caT4.validate(e, f.period), e.workerId).toEqual([]);
  });

  it('reports a planted bad SIN against the worker and field, masked', () => {
    const f = fixture();
    const bad = { ...f.employees[0]!, nationalId: '464542868' };
    const violations = caT4.validate(bad, f.period);
    expect(violations).toEqual([{ record: 'W000001', field: 'nationalId', rule: 'sin.luhn', message: expect.stringContaining('******868') }]);
    expect(violations[0]!.message).not.toContain('464542868');
  });

  it('reports names, provinces, postal codes, id types and amounts it cannot file', () => {
    const f = fixture();
    const base = f.employees[0]!;
    const rulesOf = (e: FilingEmployee) => caT4.validate(e, f.period).map((v) => `${v.field} ${v.rule}`);
    expect(rulesOf({ ...base, familyName: 'Иванова' })).toEqual(['familyName name.charset']);
    expect(rulesOf({ ...base, address: { ...base.address, region: 'on' } })).toEqual(['address.region province.code']);
    expect(rulesOf({ ...base, address: { ...base.address, postcode: 'M5B-2H' } })).toEqual(['address.postcode postcode.format']);
    expect(rulesOf({ ...base, nationalIdType: 'NINO', nationalId: 'AB123456C' })).toEqual(['nationalIdType sin.type']);
    expect(rulesOf({ ...base, period: { ...base.period, incomeTax: -500 } })).toEqual(['period.incomeTax amount.negative']);
    expect(rulesOf({ ...base, period: { ...base.period, employeeSocial: 5_000_000 } })).toEqual([
      'period (cpp_cntrb_amt) amount.range',
      'period (empe_eip_amt) amount.range',
    ]);
    expect(rulesOf({ ...base, familyName: '' })).toEqual(['familyName name.required']);
  });

  it('reports employer and transmitter problems by field', () => {
    const f = fixture();
    const rulesOf = (employer: FilingEmployer, submitter: Submitter) =>
      caT4.validateEmployer(employer, submitter).map((v) => `${v.record} ${v.field} ${v.rule}`);
    expect(rulesOf({ ...f.employer, payrollRef: '123456782RT0001' }, f.submitter)).toEqual(['O000042 payrollRef bn.program']);
    expect(rulesOf({ ...f.employer, payrollRef: '872165436RP0001' }, f.submitter)).toEqual(['O000042 payrollRef bn.root-mismatch']);
    expect(rulesOf({ ...f.employer, taxId: '123456789', payrollRef: '123456789RP0001' }, f.submitter)).toEqual([
      'O000042 taxId bn.luhn',
      'O000042 payrollRef bn.luhn',
      'submitter taxId bn.luhn',
    ]);
    expect(rulesOf(f.employer, { ...f.submitter, authorityId: 'MM555555', contact: { ...f.submitter.contact, phone: '+44 20 7946 0958' } })).toEqual([
      'submitter authorityId transmitter.authorityId',
      'submitter contact.phone contact.phone',
    ]);
  });

  it('splits employee social exactly between pension and EI', () => {
    expect(splitSocial(163_400, 595, 164)).toEqual({ pension: 128_094, ei: 35_306 });
    for (let total = 0; total < 5000; total += 7) {
      const { pension, ei } = splitSocial(total, 640, 131);
      expect(pension + ei).toBe(total);
      expect(Math.abs(pension - (total * 640) / 771)).toBeLessThanOrEqual(0.5);
    }
  });
});
