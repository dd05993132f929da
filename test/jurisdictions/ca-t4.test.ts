import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { XMLParser } from 'fast-xml-parser';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import caT4 from '../../jurisdictions/ca-t4/index.ts';
import { fold } from '../../jurisdictions/ca-t4/charset.ts';
import { bn9Problem, payrollAccountProblem } from '../../transforms/identifiers/bn.ts';
import { sinProblem } from '../../transforms/identifiers/sin.ts';
import { splitSocial } from '../../jurisdictions/ca-t4/mapping.ts';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import type { FilingEmployee, FilingEmployer, Money, RenderInput, RenderTotals, Submitter } from '../../jurisdictions/types.ts';

/** Canonical records as the pipeline builds them from the demo hub: an Ontario employer, Q4 2025 payroll. */
function fixture() {
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

async function* iterate<T>(items: readonly T[]): AsyncGenerator<T> {
  yield* items;
}

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'hubflow-ca-t4-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function renderTo(file: string, input: RenderInput, employees: readonly FilingEmployee[]): Promise<RenderTotals> {
  const out = createWriteStream(join(dir, file));
  try {
    return await caT4.render(input, iterate(employees), out);
  } finally {
    out.end();
    await once(out, 'finish');
  }
}

function inputOf(f: ReturnType<typeof fixture>, test = false): RenderInput {
  return { employer: f.employer, submitter: f.submitter, period: f.period, generatedAt: new Date('2026-01-15T09:00:00Z'), test };
}

const cents = (text: unknown) => Math.round(Number(text ?? '0') * 100);

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

const parser = new XMLParser({ parseTagValue: false, isArray: (name) => name === 'T4Slip' });
interface ParsedSlip {
  readonly sin: string;
  readonly empe_nbr: string;
  readonly bn: string;
  readonly rpt_tcd: string;
  readonly empt_prov_cd: string;
  readonly EMPE_NM: Readonly<Record<string, string>>;
  readonly EMPE_ADDR?: Readonly<Record<string, string>>;
  readonly T4_AMT: Readonly<Record<string, string | undefined>>;
}
interface ParsedSummary {
  readonly bn: string;
  readonly tx_yr: string;
  readonly slp_cnt: string;
  readonly rpt_tcd: string;
  readonly T4_TAMT: Readonly<Record<string, string>>;
}
interface Parsed {
  readonly Submission: {
    readonly T619: Readonly<Record<string, unknown>>;
    readonly Return: { readonly T4: { readonly T4Slip: ParsedSlip[]; readonly T4Summary: ParsedSummary } };
  };
}

describe('ca-t4 render', () => {
  const f = fixture();
  let xml: string;
  let totals: RenderTotals;
  let parsed: Parsed['Submission'];

  beforeAll(async () => {
    totals = await renderTo('t4.xml', inputOf(f), f.employees);
    xml = await readFile(join(dir, 't4.xml'), 'utf8');
    parsed = (parser.parse(xml) as Parsed).Submission;
  });

  it('validates against CRA T619_T4.xsd of the vendored 1.26 package, and the check can fail', async () => {
    const schemaDir = new URL('../../jurisdictions/ca-t4/schema/', import.meta.url);
    const names = await readdir(schemaDir);
    expect(names.filter((n) => n.endsWith('.xsd'))).toHaveLength(109);
    const files = await Promise.all(names.map(async (fileName) => ({ fileName, contents: await readFile(new URL(fileName, schemaDir)) })));
    const entry = files.find((x) => x.fileName === 'T619_T4.xsd')!;
    const check = (contents: string) => validateXML({ xml: [{ fileName: 't4.xml', contents }], schema: [entry], preload: files.filter((x) => x !== entry) });
    const [good, bad] = await Promise.all([check(xml), check(xml.replace('<bn>123456782RP0001</bn>', '<bn>123456782RT0001</bn>'))]);
    expect(good.errors).toEqual([]);
    expect(good.valid).toBe(true);
    expect(bad.valid).toBe(false);
  });

  it('writes the transmittal, one T4 return with a slip per employee and the summary', () => {
    expect(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<Submission xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">')).toBe(true);
    expect(xml.endsWith('</Submission>')).toBe(true);
    expect(parsed.T619).toMatchObject({
      TransmitterAccountNumber: { bn9: '123456782' },
      summ_cnt: '1',
      lang_cd: 'E',
      TransmitterName: { l1_nm: 'Northwind & Partners CA Inc.' },
      TransmitterCountryCode: 'CAN',
      CNTC: { cntc_nm: 'Hélène Gagné', cntc_area_cd: '416', cntc_phn_nbr: '555-0142', cntc_extn_nbr: '210', cntc_email_area: 'payroll@northwind.example.ca' },
    });
    expect(parsed.T619.sbmt_ref_id).toMatch(/^[A-Z0-9]{8}$/);
    const slips = parsed.Return.T4.T4Slip;
    expect(slips.map((s) => s.empe_nbr)).toEqual(['W000001', 'W000002', 'W000003', 'W000004', 'W000005']);
    expect(slips.map((s) => s.sin)).toEqual(['464542869', '275643211', '712345602', '934567124', '130692544']);
    expect(slips.map((s) => s.empt_prov_cd)).toEqual(['ON', 'QC', 'BC', 'ON', 'ON']);
    expect(slips.every((s) => s.bn === '123456782RP0001' && s.rpt_tcd === 'O')).toBe(true);
    // No empty or self-closing tags: CRA rejects both.
    expect(xml).not.toMatch(/<(\w+)><\/\1>|<\w+\/>/);
  });

  it('writes names and addresses in CRA characters and lengths', () => {
    const [, quebec, vancouver, apostrophes, irish] = parsed.Return.T4.T4Slip;
    expect(quebec!.EMPE_NM).toEqual({ snm: 'Côté', gvn_nm: 'Zoë' });
    expect(quebec!.EMPE_ADDR).toEqual({
      addr_l1_txt: '1455 boul. René-Lévesque',
      addr_l2_txt: 'app. 12',
      cty_nm: 'Montréal',
      prov_cd: 'QC',
      cntry_cd: 'CAN',
      pstl_cd: 'H3B1X9',
    });
    expect(vancouver!.EMPE_NM).toEqual({ snm: 'Muller', gvn_nm: 'Jurgen' });
    expect(vancouver!.EMPE_ADDR!.addr_l1_txt).toBe('The Old Victorian Cotton Excha');
    expect(apostrophes!.EMPE_NM).toEqual({ snm: "O'Brien-Hughes", gvn_nm: "D'Arcy" });
    expect(xml).toContain('<snm>O&apos;Brien-Hughes</snm>');
    expect(xml).toContain('<EMPR_NM><l1_nm>Northwind &amp; Partners CA Inc.</l1_nm></EMPR_NM>');
    expect(irish!.EMPE_NM).toEqual({ snm: 'O Suilleabhain', gvn_nm: 'Sean' });
  });

  it('reports QPP for Quebec and CPP elsewhere, each slip adding up to the social amount paid', () => {
    const slips = parsed.Return.T4.T4Slip;
    slips.forEach((slip, i) => {
      const paid = f.employees[i]!.period;
      const amt = slip.T4_AMT;
      expect(cents(amt.empt_incamt)).toBe(paid.gross);
      expect(cents(amt.itx_ddct_amt)).toBe(paid.incomeTax);
      expect(cents(amt.cpp_cntrb_amt) + cents(amt.qpp_cntrb_amt) + cents(amt.empe_eip_amt)).toBe(paid.employeeSocial);
      expect(cents(amt.ei_insu_ern_amt)).toBe(Math.min(paid.gross, 6_570_000));
      expect(cents(amt.cpp_qpp_ern_amt)).toBe(Math.min(paid.gross, 7_130_000));
    });
    expect(slips[1]!.T4_AMT.cpp_cntrb_amt).toBeUndefined();
    expect(slips[1]!.T4_AMT.qpp_cntrb_amt).toBeDefined();
    expect(slips[0]!.T4_AMT.qpp_cntrb_amt).toBeUndefined();
  });

  it('states summary totals equal to the sums over the slips, and returns them', () => {
    const slips = parsed.Return.T4.T4Slip;
    const sum = (box: string) => slips.reduce((n, s) => n + cents(s.T4_AMT[box]), 0);
    const summary = parsed.Return.T4.T4Summary;
    expect(summary.bn).toBe('123456782RP0001');
    expect(summary.tx_yr).toBe('2025');
    expect(summary.slp_cnt).toBe(String(slips.length));
    expect(summary.rpt_tcd).toBe('O');
    const tamt = summary.T4_TAMT;
    expect(cents(tamt.tot_empt_incamt)).toBe(sum('empt_incamt'));
    expect(cents(tamt.tot_empe_cpp_amt)).toBe(sum('cpp_cntrb_amt'));
    expect(cents(tamt.tot_empe_eip_amt)).toBe(sum('empe_eip_amt'));
    expect(cents(tamt.tot_itx_ddct_amt)).toBe(sum('itx_ddct_amt'));
    expect(cents(tamt.tot_empr_cpp_amt)).toBe(sum('cpp_cntrb_amt'));
    expect(cents(tamt.tot_empr_eip_amt)).toBe(Math.round(sum('empe_eip_amt') * 1.4));
    expect(totals).toEqual({
      records: 5,
      money: {
        employmentIncome: sum('empt_incamt'),
        cppContributions: sum('cpp_cntrb_amt'),
        eiPremiums: sum('empe_eip_amt'),
        incomeTax: sum('itx_ddct_amt'),
        employerCpp: sum('cpp_cntrb_amt'),
        employerEi: cents(tamt.tot_empr_eip_amt),
      },
    });
    expect(totals.money.employmentIncome).toBe(f.employees.reduce((n, e) => n + e.period.gross, 0));
  });

  it('renders byte-identical files for the same input, and marks test files', async () => {
    await renderTo('again.xml', inputOf(f), f.employees);
    expect((await readFile(join(dir, 'again.xml'))).equals(await readFile(join(dir, 't4.xml')))).toBe(true);
    await renderTo('test.xml', inputOf(f, true), f.employees);
    const test = (parser.parse(await readFile(join(dir, 'test.xml'), 'utf8')) as Parsed).Submission;
    expect(test.T619.sbmt_ref_id).toMatch(/^TEST[A-Z0-9]{4}$/);
    expect(parsed.T619.sbmt_ref_id).not.toMatch(/^TEST/);
  });

  it('passes its own file validator with the totals it returned', async () => {
    const result = await caT4.validateFile(join(dir, 't4.xml'));
    expect(result.violations).toEqual([]);
    expect(result.totals).toEqual(totals);
  });

  it('throws TenantViolationError on a record of another tenant and writes none of it', async () => {
    const intruder: FilingEmployee = { ...f.employees[1]!, tenantId: 'globex', workerId: 'W999999', familyName: 'Intruder', nationalId: '521836403' };
    const employees = [f.employees[0]!, intruder, f.employees[2]!];
    await expect(renderTo('tenant.xml', inputOf(f), employees)).rejects.toBeInstanceOf(TenantViolationError);
    const written = await readFile(join(dir, 'tenant.xml'), 'utf8');
    for (const trace of ['W999999', 'Intruder', '521836403', 'globex']) expect(written).not.toContain(trace);
  });

  it('refuses to write a return without slips', async () => {
    await expect(renderTo('empty.xml', inputOf(f), [])).rejects.toThrow(/at least one slip/);
    expect(await readFile(join(dir, 'empty.xml'), 'utf8')).toBe('');
  });
});

describe('ca-t4 validateFile on hand-broken files', () => {
  const f = fixture();
  const results = new Map<string, Awaited<ReturnType<typeof caT4.validateFile>>>();

  beforeAll(async () => {
    await renderTo('base.xml', inputOf(f), f.employees);
    const good = await readFile(join(dir, 'base.xml'), 'utf8');
    const replaceOnce = (from: string, to: string) => {
      expect(good.split(from)).toHaveLength(2);
      return good.replace(from, to);
    };
    const cases: Record<string, string> = {
      sin: replaceOnce('<sin>275643211</sin>', '<sin>275643212</sin>'),
      total: good.replace(
        /<tot_empt_incamt>(\d+)\.(\d\d)</,
        (_, d: string, c: string) => `<tot_empt_incamt>${d}.${String((Number(c) + 1) % 100).padStart(2, '0')}<`,
      ),
      count: replaceOnce('<slp_cnt>5</slp_cnt>', '<slp_cnt>4</slp_cnt>'),
      program: replaceOnce(
        '<bn>123456782RP0001</bn><cpp_qpp_xmpt_cd>0</cpp_qpp_xmpt_cd><ei_xmpt_cd>0</ei_xmpt_cd><rpt_tcd>O</rpt_tcd><empt_prov_cd>BC',
        '<bn>123456782RT0001</bn><cpp_qpp_xmpt_cd>0</cpp_qpp_xmpt_cd><ei_xmpt_cd>0</ei_xmpt_cd><rpt_tcd>O</rpt_tcd><empt_prov_cd>BC',
      ),
      noSin: replaceOnce('<sin>712345602</sin>', ''),
      empty: replaceOnce('<addr_l2_txt>app. 12</addr_l2_txt>', '<addr_l2_txt></addr_l2_txt>'),
      quebecCpp: replaceOnce('<qpp_cntrb_amt>', '<cpp_cntrb_amt>').replace('</qpp_cntrb_amt>', '</cpp_cntrb_amt>'),
      lowerProvince: replaceOnce('<empt_prov_cd>BC</empt_prov_cd>', '<empt_prov_cd>bc</empt_prov_cd>'),
      malformed: replaceOnce('</T4Summary>', ''),
    };
    await Promise.all(
      Object.entries(cases).map(async ([name, text]) => {
        const path = join(dir, `broken-${name}.xml`);
        await writeFile(path, text);
        results.set(name, await caT4.validateFile(path));
      }),
    );
  });

  const found = (name: string) => results.get(name)!.violations;

  it('names the slip and field of a SIN failing the check digit, masked', () => {
    expect(found('sin')).toEqual([
      {
        record: 'slip 2 (line 7, employee W000002, SIN ******212)',
        field: 'sin',
        rule: 'sin.luhn',
        message: 'SIN ******212 fails the Luhn (mod 10) check digit',
      },
    ]);
  });

  it('reports summary totals and counts that disagree with the slips', () => {
    expect(found('total')).toEqual([
      {
        record: 'T4Summary (line 11)',
        field: 'T4_TAMT/tot_empt_incamt',
        rule: 't4.totals',
        message: expect.stringMatching(/^tot_empt_incamt states \d+\.\d\d, the slips' empt_incamt add up to \d+\.\d\d$/),
      },
    ]);
    expect(found('count')).toEqual([
      { record: 'T4Summary (line 11)', field: 'slp_cnt', rule: 't4.slp_cnt', message: 'slp_cnt states 4 slips, the return holds 5' },
    ]);
  });

  it('reports schema errors against the slip, and the rules the schema cannot check', () => {
    expect(found('program').map((v) => `${v.record.split(' (')[0]} ${v.field} ${v.rule}`)).toEqual(
      expect.arrayContaining(['slip 3 bn xsd', 'slip 3 bn bn.program', 'slip 3 bn bn.summary-mismatch']),
    );
    expect(found('noSin')).toEqual([
      { record: 'slip 3 (line 8, employee W000003)', field: 'T4Slip', rule: 'xsd', message: expect.stringContaining('Missing child element(s)') },
    ]);
    expect(found('empty').map((v) => `${v.field} ${v.rule}`)).toEqual(['addr_l2_txt xsd', 'addr_l2_txt cra.empty-tag']);
    // Moving Quebec's QPP into box 16 breaks the slip's rule and the summary's CPP total.
    expect(found('quebecCpp')).toEqual([
      { record: expect.stringMatching(/^slip 2 /), field: 'T4_AMT/cpp_cntrb_amt', rule: 't4.cpp-qpp', message: expect.stringContaining('box 17') },
      {
        record: 'T4Summary (line 11)',
        field: 'T4_TAMT/tot_empe_cpp_amt',
        rule: 't4.totals',
        message: expect.stringContaining("the slips' cpp_cntrb_amt add up to"),
      },
    ]);
    // The schema accepts lower-case provinces; CRA's specification does not.
    expect(found('lowerProvince')).toEqual([
      { record: expect.stringMatching(/^slip 3 /), field: 'empt_prov_cd', rule: 'province.code', message: expect.stringContaining("'bc'") },
    ]);
    expect(found('malformed')).toEqual([
      { record: expect.stringMatching(/^line \d+$/), field: '(document)', rule: 'xml.well-formed', message: expect.stringContaining('T4Summary') },
    ]);
  });

  it('reads the encodings CRA accepts besides UTF-8', async () => {
    const good = await readFile(join(dir, 'base.xml'), 'utf8');
    const path = join(dir, 'windows-1252.xml');
    // Every character of the fixture exists in Windows-1252, where it takes one byte.
    await writeFile(path, Buffer.from(good.replace('encoding="UTF-8"', 'encoding="windows-1252"'), 'latin1'));
    expect((await caT4.validateFile(path)).violations).toEqual([]);
  });

  it('returns the totals a file states, even when they are wrong', () => {
    const base = results.get('count')!.totals;
    expect(base.records).toBe(4);
    expect(base.money.employmentIncome).toBe(f.employees.reduce((n, e) => n + e.period.gross, 0));
  });
});
