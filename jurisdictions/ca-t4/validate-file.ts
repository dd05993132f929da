import { recordSpanning } from '../common.ts';
import { readFile } from 'node:fs/promises';
import { XMLValidator } from 'fast-xml-parser';
import type { RenderTotals, Violation } from '../types.ts';
import { parseAmount } from './amounts.ts';
import { mask } from './charset.ts';
import { checkSlip, checkSummary, checkTransmittal, slipLabel } from './file-rules.ts';
import { TOTAL_LINES } from './layout.ts';
import { lineIndex, parseSpan, spans, textAt } from './scan.ts';
import { validateAgainstSchema } from './xsd.ts';

/**
 * Checks any T619/T4 Submission: well-formedness, CRA's schema (T619_T4.xsd), then the rules the
 * schema cannot express, record by record, and whether each T4 Summary's count and totals agree
 * with its slips. Returns the totals the file's summaries state.
 */

const BOXES = TOTAL_LINES.flatMap((l) => (l.box ? [{ total: l.total, box: l.box }] : []));
const NO_TOTALS: RenderTotals = { records: 0, money: {} };

const DECLARED_ENCODING = /^(\s*<\?xml[^>]*encoding\s*=\s*["'])([^"']+)(["'])/i;

/**
 * CRA accepts UTF-8, ISO-8859-1 and Windows-1252 files. The text is decoded as declared; the
 * schema check gets UTF-8 bytes, since libxml2 in WebAssembly has no Windows-1252 decoder.
 */
function decode(bytes: Uint8Array): { text: string; utf8: Uint8Array } {
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 200));
  const declared = DECLARED_ENCODING.exec(head)?.[2]?.toLowerCase() ?? 'utf-8';
  const text = new TextDecoder(declared === 'iso-8859-1' ? 'latin1' : declared, { fatal: true }).decode(bytes);
  if (declared === 'utf-8' || declared === 'utf8') return { text, utf8: bytes };
  return { text, utf8: new TextEncoder().encode(text.replace(DECLARED_ENCODING, '$1UTF-8$3')) };
}

// Comments become spaces of the same length: offsets and line numbers stay true.
function blankComments(text: string): string {
  return text.replace(/<!--[\s\S]*?-->/g, (c) => c.replace(/[^\n]/g, ' '));
}

/** CRA rejects empty optional tags and XML shortcut tags (<pstl_cd/>); schemas do not notice. */
function emptyTags(text: string, lineAt: (offset: number) => number, recordAt: (line: number) => string, add: (v: Violation) => void): void {
  for (const m of text.matchAll(/<([A-Za-z_][\w.-]*)(?:\s[^<>]*)?(?:\/>|>\s*<\/\1>)/g)) {
    add({
      record: recordAt(lineAt(m.index)),
      field: m[1]!,
      rule: 'cra.empty-tag',
      message: `<${m[1]}> is empty: CRA rejects empty tags, leave optional elements out when they have no value`,
    });
  }
}

// A schema message quotes the value it refused; a SIN must not appear in full.
function maskSinValues(message: string): string {
  return /Element '(sin|pprtr_\d_sin)'/.test(message) ? message.replace(/The value '([^']*)'/, (_, v: string) => `The value '${mask(v)}'`) : message;
}

interface SlipLines {
  readonly first: number;
  readonly last: number;
  readonly label: string;
}

export async function validateT4File(path: string): Promise<{ totals: RenderTotals; violations: Violation[] }> {
  const bytes = new Uint8Array(await readFile(path));
  let text: string;
  let utf8: Uint8Array;
  try {
    const decoded = decode(bytes);
    text = blankComments(decoded.text);
    utf8 = decoded.utf8;
  } catch (err) {
    return {
      totals: NO_TOTALS,
      violations: [{ record: 'file', field: '(document)', rule: 'xml.encoding', message: `cannot decode the file: ${(err as Error).message}` }],
    };
  }
  const wellFormed = XMLValidator.validate(text);
  if (wellFormed !== true) {
    const { line, msg } = wellFormed.err;
    return {
      totals: NO_TOTALS,
      violations: [{ record: `line ${line}`, field: '(document)', rule: 'xml.well-formed', message: `not well-formed XML: ${msg}` }],
    };
  }

  const lineAt = lineIndex(text);
  const violations: Violation[] = [];
  const add = (v: Violation) => violations.push(v);
  const at = (record: string) => (field: string, rule: string, message: string) => add({ record, field, rule, message });

  // Slip line ranges, to name the slip a schema error falls in.
  const slipLines: SlipLines[] = [];
  const returns = [...spans(text, 'T4')];
  const summaries = returns.reduce((n, r) => n + [...spans(text, 'T4Summary', r.start, r.end)].length, 0);

  const t619 = spans(text, 'T619').next().value;
  if (!t619) add({ record: 'file', field: 'T619', rule: 'structure', message: 'the T619 transmittal is missing' });
  else checkTransmittal(parseSpan(text, t619, 'T619'), summaries, at(`T619 (line ${lineAt(t619.start)})`));
  if (!returns.length) add({ record: 'file', field: 'Return/T4', rule: 'structure', message: 'the file holds no T4 return' });

  let slipNumber = 0;
  let statedRecords = 0;
  const statedMoney: Record<string, number> = {};
  for (const [r, ret] of returns.entries()) {
    const where = returns.length > 1 ? ` of return ${r + 1}` : '';
    const summarySpan = spans(text, 'T4Summary', ret.start, ret.end).next().value;
    const summary = summarySpan ? parseSpan(text, summarySpan, 'T4Summary') : undefined;
    const sums: Record<string, number> = {};
    let slips = 0;
    for (const span of spans(text, 'T4Slip', ret.start, ret.end)) {
      slips++;
      slipNumber++;
      const slip = parseSpan(text, span, 'T4Slip');
      const label = `${slipLabel(slipNumber, lineAt(span.start), slip)}${where}`;
      slipLines.push({ first: lineAt(span.start), last: lineAt(span.end), label });
      checkSlip(slip, summary && textAt(summary, 'bn'), at(label));
      for (const { total, box } of BOXES) {
        const value = textAt(slip, `T4_AMT/${box}`);
        const cents = value === undefined ? 0 : parseAmount(value);
        if (cents !== null) sums[total] = (sums[total] ?? 0) + cents;
      }
    }
    if (!summary || !summarySpan) {
      add({ record: `T4${where}`, field: 'T4Summary', rule: 'structure', message: 'the T4 Summary is missing' });
      continue;
    }
    checkSummary(summary, slips, sums, BOXES, at(`T4Summary${where} (line ${lineAt(summarySpan.start)})`));
    const count = textAt(summary, 'slp_cnt');
    if (count !== undefined && /^\d+$/.test(count)) statedRecords += Number(count);
    for (const line of TOTAL_LINES) {
      const cents = parseAmount(textAt(summary, `T4_TAMT/${line.total}`) ?? '');
      if (cents !== null) statedMoney[line.key] = (statedMoney[line.key] ?? 0) + cents;
    }
  }

  const recordAt = (line: number) =>
    slipLines[
      recordSpanning(
        slipLines,
        line,
        (l) => l.first,
        (l) => l.last,
      )
    ]?.label ?? `line ${line}`;
  emptyTags(text, lineAt, recordAt, add);

  const schemaErrors = await validateAgainstSchema(utf8);
  const schemaViolations = schemaErrors.map(
    (e): Violation => ({
      record: e.line === null ? 'file' : recordAt(e.line),
      field: /Element '([^']+)'/.exec(e.message)?.[1] ?? '(document)',
      rule: 'xsd',
      message: maskSinValues(e.message),
    }),
  );
  return { totals: { records: statedRecords, money: statedMoney }, violations: [...schemaViolations, ...violations] };
}
