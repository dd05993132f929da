import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateXML } from 'xmllint-wasm';
import { scanFps, type ScanEvent } from '../../jurisdictions/gb-rti-fps/file-scan.ts';
import fps from '../../jurisdictions/gb-rti-fps/index.ts';
import { parseTaxCode, taxCodeProblem } from '../../jurisdictions/gb-rti-fps/tax-code.ts';
import { ninoProblem } from '../../transforms/identifiers/nino.ts';
import { accountsOfficeRefProblem, splitPayeReference, utrProblem } from '../../transforms/identifiers/paye.ts';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import type { Address, FilingEmployee, FilingEmployer, FilingPeriod, RenderInput, RenderTotals, Submitter } from '../../jurisdictions/types.ts';

const SCHEMA = new URL('../../jurisdictions/gb-rti-fps/schema/', import.meta.url);
const schema = (file: string) => readFile(new URL(file, SCHEMA), 'utf8');

const home: Address = { line1: '14 Station Road', line2: 'Flat 3B', city: 'Manchester', region: null, postcode: 'm1 4bt', country: 'GB' };

function employer(): FilingEmployer {
  return {
    tenantId: 'acme',
    orgId: 'O000012',
    legalName: 'Acme Analytics UK Ltd',
    country: 'GB',
    taxId: '2234567890',
    payrollRef: '120/AB45678',
    accountsOfficeRef: '120PS00045678',
    address: { line1: "1 King's Road", line2: null, city: 'London', region: null, postcode: 'SW1A 1AA', country: 'GB' },
  };
}

function submitter(name = 'Acme Analytics UK Ltd'): Submitter {
  return {
    name,
    authorityId: null,
    taxId: null,
    address: employer().address,
    contact: { name: 'Payroll Team', phone: '020 7946 0000', email: 'payroll@acme.example' },
  };
}

function period(id: string): FilingPeriod {
  const found = fps.periods(new Date('2025-04-01'), new Date('2027-05-01')).find((p) => p.id === id);
  if (!found) throw new Error(`no period ${id}`);
  return found;
}

/** Realistic monthly payroll figures in pence: gross, PAYE, employee and employer NICs. */
function employee(n: number, over: Partial<FilingEmployee> = {}): FilingEmployee {
  const gross = 250_000 + n * 12_345;
  const tax = Math.round((gross - 104_750) * 0.2);
  const ee = Math.round((gross - 104_800) * 0.08);
  const er = Math.round((gross - 41_700) * 0.15);
  return {
    tenantId: 'acme',
    orgId: 'O000012',
    workerId: `W${String(n).padStart(6, '0')}`,
    contractId: `K${String(n).padStart(6, '0')}`,
    givenName: ['Oliver', 'Siobhán', 'Łukasz', 'Zoë', 'Mary-Kate'][n % 5]!,
    familyName: ['Taylor', "O'Brien", 'Wiśniewski', 'Ó Súilleabháin', 'Fitzgerald-Hughes'][n % 5]!,
    birthDate: `19${70 + (n % 30)}-0${1 + (n % 9)}-1${n % 10}`,
    gender: n % 2 ? 'F' : 'M',
    nationalId: `AB${String(100000 + n).slice(-6)}C`,
    nationalIdType: 'NINO',
    address: home,
    hireDate: '2019-09-02',
    terminationDate: null,
    payFrequency: 'monthly',
    taxCode: n % 4 === 3 ? 'S1257L' : '1257L',
    niCategory: 'A',
    payDate: '2025-11-28',
    period: { gross, incomeTax: tax, employeeSocial: ee, employerSocial: er, net: gross - tax - ee },
    yearToDate: { gross: gross * 8, incomeTax: tax * 8, employeeSocial: ee * 8, employerSocial: er * 8, net: (gross - tax - ee) * 8 },
    ...over,
  };
}

async function* stream<T>(items: readonly T[]): AsyncGenerator<T> {
  for (const item of items) yield item;
}

async function render(p: FilingPeriod, employees: readonly FilingEmployee[], extra: Partial<RenderInput> = {}): Promise<{ xml: string; totals: RenderTotals }> {
  const chunks: Buffer[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, done) {
      chunks.push(Buffer.from(chunk));
      done();
    },
  });
  const input: RenderInput = { employer: employer(), submitter: submitter(), period: p, generatedAt: new Date('2025-11-25T09:30:00Z'), test: false, ...extra };
  const totals = await fps.render(input, stream(employees), out);
  return { xml: Buffer.concat(chunks).toString('utf8'), totals };
}

/** The IRenvelope of a message as a document of its own (it declares its namespace itself). */
const irEnvelope = (xml: string) => xml.slice(xml.indexOf('<IRenvelope'), xml.indexOf('</IRenvelope>') + '</IRenvelope>'.length);

async function fpsSchemaErrors(xml: string, xsd: string): Promise<string[]> {
  const r = await validateXML({ xml: [{ fileName: 'fps.xml', contents: irEnvelope(xml) }], schema: [{ fileName: 'fps.xsd', contents: await schema(xsd) }] });
  return r.errors.map((e) => e.message);
}

/** The envelope imports xmldsig from a W3C URL: a wrapper imports the vendored copy first, offline. */
async function envelopeErrors(xml: string, envelopeXsd: string): Promise<string[]> {
  const wrapper = `<?xml version="1.0"?><xsd:schema xmlns:xsd="http://www.w3.org/2001/XMLSchema">
<xsd:import namespace="http://www.w3.org/2000/09/xmldsig#" schemaLocation="xmldsig-core-schema.xsd"/>
<xsd:import namespace="http://www.govtalk.gov.uk/CM/envelope" schemaLocation="envelope.xsd"/></xsd:schema>`;
  const r = await validateXML({
    xml: [{ fileName: 'msg.xml', contents: xml }],
    schema: [{ fileName: 'wrapper.xsd', contents: wrapper }],
    preload: [
      { fileName: 'envelope.xsd', contents: await schema(envelopeXsd) },
      { fileName: 'xmldsig-core-schema.xsd', contents: await schema('support/xmldsig-core-schema.xsd') },
    ],
  });
  return r.errors.filter((e) => e.loc?.fileName === 'msg.xml').map((e) => e.message);
}

const sum = (list: readonly FilingEmployee[], pick: (e: FilingEmployee) => number) => list.reduce((s, e) => s + pick(e), 0);

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gb-rti-fps-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

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

describe('gb-rti-fps rendering', () => {
  const team = Array.from({ length: 12 }, (_, n) => employee(n));
  // A leaver who left last month and is paid now, a Welsh week-1 code and a foreign address.
  team.push(employee(12, { terminationDate: '2025-10-31', taxCode: 'C1257L M1' }));
  team.push(employee(13, { address: { line1: '25 rue des Écoles', line2: null, city: 'Paris', region: null, postcode: '75005', country: 'FR' } }));

  it("writes a GovTalk message that HMRC's 2025-26 FPS and envelope schemas accept", async () => {
    const { xml } = await render(period('2025-26-M08'), team);
    expect(await fpsSchemaErrors(xml, '2025-26/FullPaymentSubmission-2026-v1-0.xsd')).toEqual([]);
    expect(await envelopeErrors(xml, '2025-26/envelope-v2-0-HMRC.xsd')).toEqual([]);
    expect(xml).toContain('<Class>HMRC-PAYE-RTI-FPS</Class>');
    expect(xml).toContain('<IRenvelope xmlns="http://www.govtalk.gov.uk/taxation/PAYE/RTI/FullPaymentSubmission/25-26/1">');
    expect(xml).toContain('<RelatedTaxYear>25-26</RelatedTaxYear>');
    expect(xml).toContain('<Key Type="TaxOfficeNumber">120</Key>\n<Key Type="TaxOfficeReference">AB45678</Key>');
    expect(xml).toContain("<Fore>Siobhan</Fore>\n<Sur>O'Brien</Sur>");
    expect(xml).toContain('<Sur>O Suilleabhain</Sur>');
    expect(xml).toContain('<UKPostcode>M1 4BT</UKPostcode>');
    expect(xml).toContain('<Line>25 rue des Ecoles</Line>\n<Line>Paris 75005</Line>\n<ForeignCountry>France</ForeignCountry>');
    expect(xml).toContain('<TaxCode BasisNonCumulative="yes" TaxRegime="C">1257L</TaxCode>');
    expect(xml).toContain('<LeavingDate>2025-10-31</LeavingDate>');
    expect(xml).toContain('<PmtAfterLeaving>yes</PmtAfterLeaving>');
    expect(xml).not.toContain('FinalSubmission');
    expect(xml).not.toContain('SenderDetails');
  });

  it("switches namespace, schema and year for 2026-27 and marks the year's last FPS final", async () => {
    const march = team.map((e) => ({ ...e, payDate: '2027-03-31', terminationDate: null }));
    const { xml } = await render(period('2026-27-M12'), march, { test: true });
    expect(await fpsSchemaErrors(xml, '2026-27/FullPaymentSubmission-2027-v1-0.xsd')).toEqual([]);
    expect(await envelopeErrors(xml, '2026-27/envelope-v2-0-HMRC.xsd')).toEqual([]);
    expect(xml).toContain('FullPaymentSubmission/26-27/1');
    expect(xml).toContain('<RelatedTaxYear>26-27</RelatedTaxYear>');
    expect(xml).toContain('<Class>HMRC-PAYE-RTI-FPS-TIL</Class>');
    expect(xml).toContain('<FinalSubmission>\n<ForYear>yes</ForYear>\n</FinalSubmission>');
    // The 2025-26 schema refuses the same payload: the namespace is the year's.
    expect((await fpsSchemaErrors(xml, '2025-26/FullPaymentSubmission-2026-v1-0.xsd')).length).toBeGreaterThan(0);
  });

  it('returns totals equal to the sums of the records it wrote', async () => {
    const { totals } = await render(period('2025-26-M08'), team);
    expect(totals).toEqual({
      records: team.length,
      money: {
        taxablePay: sum(team, (e) => e.period.gross),
        taxDeductedOrRefunded: sum(team, (e) => e.period.incomeTax),
        employeeNics: sum(team, (e) => e.period.employeeSocial),
        employerNics: sum(team, (e) => e.period.employerSocial),
      },
    });
  });

  it('gives byte-identical output for the same input', async () => {
    const a = await render(period('2025-26-M08'), team);
    const b = await render(period('2025-26-M08'), team);
    expect(Buffer.from(b.xml).equals(Buffer.from(a.xml))).toBe(true);
  });

  it('throws TenantViolationError at a record of another tenant and writes nothing of it', async () => {
    const intruder = employee(90, { tenantId: 'globex', orgId: 'O000099', contractId: 'K-GLOBEX-1', familyName: 'Intruder' });
    const chunks: string[] = [];
    const out = new Writable({
      write(chunk: Buffer, _enc, done) {
        chunks.push(chunk.toString());
        done();
      },
    });
    const input: RenderInput = {
      employer: employer(),
      submitter: submitter(),
      period: period('2025-26-M08'),
      generatedAt: new Date('2025-11-25T09:30:00Z'),
      test: false,
    };
    // Enough records before it that earlier chunks have been written out.
    const before = Array.from({ length: 400 }, (_, n) => employee(n));
    await expect(fps.render(input, stream([...before, intruder, employee(2)]), out)).rejects.toBeInstanceOf(TenantViolationError);
    const written = chunks.join('');
    expect(written).toContain('<PayId>K000000</PayId>');
    expect(written).not.toContain('K-GLOBEX-1');
    expect(written).not.toContain('Intruder');
    expect(written).not.toContain('W000090');
  });

  it('refuses a period of a tax year it has no schema for', async () => {
    const old = fps.periods(new Date('2024-11-01'), new Date('2024-12-31'))[0]!;
    await expect(render(old, [employee(1)])).rejects.toThrow(/2024-25/);
    expect(fps.validate(employee(1), old).map((v) => v.rule)).toEqual(['taxyear.unsupported']);
  });
});

describe('gb-rti-fps file validation', () => {
  const team = Array.from({ length: 6 }, (_, n) => employee(n));

  it('passes a file it rendered and states the same totals', async () => {
    const { xml, totals } = await render(period('2025-26-M08'), team);
    const result = await fps.validateFile(await file('good.xml', xml));
    expect(result.violations).toEqual([]);
    expect(result.totals).toEqual(totals);
  });

  it('sends a NINO stored without its suffix with a space for the suffix, which schema and rules accept', async () => {
    const unknownSuffix = employee(0, { nationalId: 'ab 10 00 00' });
    expect(fps.validate(unknownSuffix, period('2025-26-M08'))).toEqual([]);
    const { xml } = await render(period('2025-26-M08'), [unknownSuffix]);
    expect(xml).toContain('<NINO>AB100000 </NINO>');
    expect((await fps.validateFile(await file('blank-suffix.xml', xml))).violations).toEqual([]);
  });

  it('reports hand-broken records with the right record, field, rule and message', async () => {
    const { xml } = await render(period('2025-26-M08'), team);
    const employees = xml.split('<Employee>');
    const broken = [
      employees[0]!
        .replace('<Class>HMRC-PAYE-RTI-FPS</Class>', '<Class>HMRC-PAYE-RTI-EPS</Class>')
        .replace(
          '<Key Type="TaxOfficeReference">AB45678</Key>\n</Keys>\n<TargetDetails>',
          '<Key Type="TaxOfficeReference">AB99999</Key>\n</Keys>\n<TargetDetails>',
        )
        .replace('<Qualifier>request</Qualifier>', '<Qualifier>bogus</Qualifier>')
        // The schema takes any letter there; HMRC's check letter for these digits is S.
        .replace('<AORef>120PS00045678</AORef>', '<AORef>120PA00045678</AORef>'),
      employees[1]!.replace('<NINO>AB100000C</NINO>', '<NINO>BG100000C</NINO>'),
      // An administrative prefix passes the schema's pattern; HMRC's rules do not.
      employees[2]!.replace('<NINO>AB100001C</NINO>', '<NINO>PY100001C</NINO>'),
      employees[3]!.replace('<NIletter>A</NIletter>', '<NIletter>B</NIletter>'),
      employees[4]!.replace(/<NINO>[^<]*<\/NINO>\n/, '').replace(/<Line>Flat 3B<\/Line>\n<Line>Manchester<\/Line>\n/, ''),
      employees[5]!.replace('<TaxDeductedOrRefunded>', '<TaxDeductedOrRefunded>x'),
      employees[6]!,
    ].join('<Employee>');
    const { violations, totals } = await fps.validateFile(await file('broken.xml', broken));
    const found = violations.map((v) => `${v.record} | ${v.field} | ${v.rule}`);
    expect(found).toEqual(
      expect.arrayContaining([
        'GovTalkMessage/Header/MessageDetails | Class | FPS.0',
        'IRenvelope/IRheader | Keys | r1004',
        'FullPaymentSubmission/EmpRefs | AORef | aoref.check',
        expect.stringMatching(/^line 7 \| Qualifier \| xsd$/),
        expect.stringMatching(/^employee 1 \(PayId K000000, line \d+\) \| NINO \| xsd$/),
        expect.stringMatching(/^employee 2 \(PayId K000001, line \d+\) \| EmployeeDetails\/NINO \| nino\.prefix$/),
        expect.stringMatching(/^employee 3 \(PayId K000002, line \d+\) \| Employment\/NIlettersAndValues\/NIletter \| NILETTER\.0$/),
        expect.stringMatching(/^employee 4 \(PayId K000003, line \d+\) \| EmployeeDetails\/Address\/Line \| EMPLOYEE\.0$/),
        expect.stringMatching(/^employee 5 \(PayId K000004, line \d+\) \| TaxDeductedOrRefunded \| xsd$/),
      ]),
    );
    // The untouched record is not blamed for its neighbours.
    expect(found.filter((f) => f.startsWith('employee 6 '))).toEqual([]);
    const message = (rule: string, field: string) => violations.find((v) => v.rule === rule && v.field === field)!.message;
    expect(message('xsd', 'NINO')).toContain("'******00C'");
    expect(message('xsd', 'NINO')).not.toContain('BG100000C');
    expect(message('FPS.0', 'Class')).toContain("'HMRC-PAYE-RTI-EPS'");
    expect(message('EMPLOYEE.0', 'EmployeeDetails/Address/Line')).toMatch(/no NINO.*found 1 \(error 7823\)/);
    expect(message('xsd', 'Qualifier')).toContain("The value 'bogus' is not an element of the set {'request'");
    // The line of a record is the line of its <Employee> in the file.
    const line = Number(/line (\d+)/.exec(violations.find((v) => v.rule === 'NILETTER.0')!.record)![1]);
    expect(broken.split('\n')[line - 1]).toBe('<Employee>');
    // The unreadable figure is reported and left out of the totals, not guessed.
    expect(totals.records).toBe(6);
    expect(totals.money.taxDeductedOrRefunded).toBe(sum(team, (e) => e.period.incomeTax) - team[4]!.period.incomeTax);
  });

  it('reads files with other namespace prefixes and reports an empty or unknown-year file', async () => {
    const { xml } = await render(period('2025-26-M08'), team.slice(0, 2));
    const ns = 'http://www.govtalk.gov.uk/taxation/PAYE/RTI/FullPaymentSubmission/25-26/1';
    const [before, body] = [xml.slice(0, xml.indexOf('<IRenvelope')), xml.slice(xml.indexOf('<IRenvelope'))];
    const prefixed =
      before.replace('<GovTalkMessage ', `<GovTalkMessage xmlns:fps="${ns}" `) +
      body.replace(` xmlns="${ns}"`, '').replace(/<(\/?)(?=[A-Z])(?!Body|GovTalkMessage)/g, '<$1fps:');
    const clean = await fps.validateFile(await file('prefixed.xml', prefixed));
    expect(clean.violations).toEqual([]);
    expect(clean.totals.records).toBe(2);

    const empty = xml.slice(0, xml.indexOf('<Employee>')) + xml.slice(xml.lastIndexOf('</Employee>') + '</Employee>\n'.length);
    const unknownYear = empty.replace('/25-26/1', '/24-25/1');
    const result = await fps.validateFile(await file('empty.xml', unknownYear));
    expect(result.violations.map((v) => v.rule)).toEqual(['fps.namespace', 'FPS.1']);
    expect(result.totals).toEqual({ records: 0, money: { taxablePay: 0, taxDeductedOrRefunded: 0, employeeNics: 0, employerNics: 0 } });
  });

  it("reads a file in pieces that put back together give the file, with each employee's line", async () => {
    const { xml } = await render(
      period('2025-26-M08'),
      Array.from({ length: 7 }, (_, n) => employee(n)),
    );
    const text = xml.replace('</Employee>\n<Employee>', '</Employee>\n<!-- a comment between records -->\n<Employee>');
    const events: ScanEvent[] = [];
    for await (const ev of scanFps(await file('pieces.xml', text), { batchRecords: 3, batchChars: 1 << 20, readBytes: 97 })) events.push(ev);
    expect(events.map((e) => e.kind)).toEqual(['head', 'batch', 'batch', 'batch', 'tail']);
    expect(events.map((e) => e.text).join('')).toBe(text);
    const lines = text.split('\n');
    const employees = events.flatMap((e) => (e.kind === 'batch' ? e.employees.map((emp) => ({ emp, text: e.text })) : []));
    expect(employees).toHaveLength(7);
    for (const { emp, text: batch } of employees) {
      const element = batch.substr(emp.offset, emp.length);
      expect(element.startsWith('<Employee>') && element.endsWith('</Employee>')).toBe(true);
      expect(lines[emp.line - 1]).toBe('<Employee>');
      expect(lines[emp.endLine - 1]).toBe('</Employee>');
    }
  });

  it('checks a file of several batches and places a fault in a later batch at its line', async () => {
    const many = Array.from({ length: 6_000 }, (_, n) =>
      employee(n, { nationalId: `AB${String(n).padStart(6, '0')}C`, contractId: `K${String(n).padStart(6, '0')}` }),
    );
    const { xml, totals } = await render(period('2025-26-M08'), many);
    const broken = xml.replace('<NINO>AB005500C</NINO>', '<NINO>AB005500</NINO>');
    const result = await fps.validateFile(await file('many.xml', broken));
    expect(result.totals).toEqual(totals);
    // libxml2 reports the length and the pattern facet: two messages, one record and field.
    expect(new Set(result.violations.map((v) => `${v.record.replace(/, line \d+/, '')} ${v.field} ${v.rule}`))).toEqual(
      new Set(['employee 5501 (PayId K005500) NINO xsd']),
    );
    expect(result.violations.map((v) => v.message).join(' ')).toContain("'*****500'");
    const line = Number(/line (\d+)/.exec(result.violations[0]!.record)![1]);
    expect(broken.split('\n').slice(line - 1, line + 2)).toEqual(['<Employee>', '<EmployeeDetails>', '<NINO>AB005500</NINO>']);
  });
});
