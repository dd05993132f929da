import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanFps, type ScanEvent } from '../../jurisdictions/gb-rti-fps/file-scan.ts';
import fps from '../../jurisdictions/gb-rti-fps/index.ts';
import { TenantViolationError } from '../../jurisdictions/common.ts';
import type { RenderInput } from '../../jurisdictions/types.ts';
import { employer, submitter, period, employee, stream, render, fpsSchemaErrors, envelopeErrors, sum } from './gb-rti-fps-fixture.ts';

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
