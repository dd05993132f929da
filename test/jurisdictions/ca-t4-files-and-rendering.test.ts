import { XMLParser } from 'fast-xml-parser';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import caT4 from '../../jurisdictions/ca-t4/index.ts';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import type { FilingEmployee, RenderInput, RenderTotals } from '../../jurisdictions/types.ts';
import { fixture, iterate, inputOf, cents } from './ca-t4-fixture.ts';

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
