import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import usEfw2 from '../../jurisdictions/us-efw2/index.ts';
import { LAYOUTS } from '../../jurisdictions/us-efw2/layout.ts';
import { employer, submitter, year, employee, fixture, period, renderText, records, rulesOf } from './us-efw2-fixture.ts';

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
