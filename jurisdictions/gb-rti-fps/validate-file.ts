import { recordSpanning } from '../common.ts';
import { accountsOfficeRefProblem, utrProblem } from '../../transforms/identifiers/paye.ts';
import type { RenderTotals, Violation } from '../types.ts';
import { isIsoDate } from './calendar.ts';
import { closingTags, findIrEnvelope, openElements, type IrEnvelopeStart } from './envelope-text.ts';
import { type ScanEvent, scanFps } from './file-scan.ts';
import { type FpsHeader, parseEmployee, parseHeader } from './parse.ts';
import { employeeIssues, type RuleContext } from './rules.ts';
import { TAX_YEARS, taxYearByNamespace, type TaxYearSpec } from './tax-years.ts';
import { quote } from './text.ts';
import { addToTotals, emptyTotals, type FpsTotals } from './totals.ts';
import { validateEnvelopeDocs, validateFpsDocs, type XsdError } from './xsd.ts';

/**
 * Checks any FPS GovTalk message: the whole message against the GovTalk envelope schema, the
 * IRenvelope against the FPS schema of the namespace it declares, HMRC's business rules on the
 * header and on every employee, and the sums of the Payment figures (an FPS has no totals record
 * of its own). Streams: the employees are checked in batches, each batch validated as a document
 * made of the message's head, the batch and the closing tags, with line numbers of the file.
 */

type Batch = Extract<ScanEvent, { kind: 'batch' }>;

interface State {
  readonly violations: Violation[];
  readonly totals: FpsTotals;
  records: number;
  head: string;
  /** Line the head's last character is on: where a batch's text starts in a rebuilt document. */
  headEndLine: number;
  ir: IrEnvelopeStart | null;
  year: TaxYearSpec | null;
  ctx: RuleContext;
}

const lines = (text: string) => {
  let n = 0;
  for (let i = text.indexOf('\n'); i !== -1; i = text.indexOf('\n', i + 1)) n++;
  return n;
};

/** The IRenvelope of a rebuilt message as a document of its own, lines aligned with the file. */
function fpsDocument(s: State, ir: IrEnvelopeStart, middle: string, tail: string | null): string {
  const pad = '\n'.repeat(ir.line - 1);
  const inner = s.head.slice(ir.end);
  if (tail !== null) {
    const rest = inner + middle + tail;
    const close = rest.lastIndexOf(ir.closeTag);
    if (close !== -1) return `${pad}${ir.standaloneTag}${rest.slice(0, close + ir.closeTag.length)}`;
  }
  return `${pad}${ir.standaloneTag}${inner}${middle}\n${closingTags(openElements(inner))}\n${ir.closeTag}`;
}

function headerViolation(s: State, record: string, field: string, rule: string, message: string): void {
  s.violations.push({ record, field, rule, message });
}

/** An error of a rebuilt document outside the employees: located by the file's line. */
function xsdViolation(e: XsdError, line: number | null): Violation {
  return { record: line === null ? 'file' : `line ${line}`, field: e.element ?? 'document', rule: 'xsd', message: e.message };
}

function headerRules(s: State, h: FpsHeader, ir: IrEnvelopeStart | null): void {
  const MD = 'GovTalkMessage/Header/MessageDetails';
  const IRH = 'IRenvelope/IRheader';
  const EMP = 'FullPaymentSubmission/EmpRefs';
  if (h.className !== 'HMRC-PAYE-RTI-FPS' && h.className !== 'HMRC-PAYE-RTI-FPS-TIL') {
    headerViolation(s, MD, 'Class', 'FPS.0', `message class ${quote(h.className ?? '')} is not HMRC-PAYE-RTI-FPS or HMRC-PAYE-RTI-FPS-TIL (error 7837)`);
  }
  if (!ir) return headerViolation(s, 'GovTalkMessage/Body', 'IRenvelope', 'fps.structure', 'the message body has no IRenvelope');
  if (!s.year) {
    const known = TAX_YEARS.map((y) => y.namespace).join(', ');
    headerViolation(
      s,
      'GovTalkMessage/Body',
      'IRenvelope',
      'fps.namespace',
      `IRenvelope namespace ${quote(ir.namespace ?? '(none)')} is not an FPS schema namespace this validator has (${known})`,
    );
  }
  if (!h.irKeys.length) headerViolation(s, IRH, 'Keys', 'r1005', 'the IRheader has no keys (error 5004)');
  for (const k of h.irKeys) {
    if (!h.govTalkKeys.some((g) => g.type === k.type && g.value === k.value)) {
      headerViolation(s, IRH, 'Keys', 'r1004', `IRheader key ${k.type}=${quote(k.value)} is not in the GovTalk header's keys with the same value (error 5005)`);
    }
  }
  const key = (type: string) => h.irKeys.find((k) => k.type === type)?.value;
  if (h.officeNo !== null && key('TaxOfficeNumber') !== h.officeNo) {
    headerViolation(
      s,
      EMP,
      'OfficeNo',
      'HMRCOFFICENUMBER.0',
      `IRheader key TaxOfficeNumber ${quote(key('TaxOfficeNumber') ?? '(none)')} does not match OfficeNo ${quote(h.officeNo)} (error 7821)`,
    );
  }
  if (h.payeRef !== null && key('TaxOfficeReference') !== h.payeRef) {
    headerViolation(
      s,
      EMP,
      'PayeRef',
      'EMPLOYERPAYEREF.0',
      `IRheader key TaxOfficeReference ${quote(key('TaxOfficeReference') ?? '(none)')} does not match PayeRef ${quote(h.payeRef)} (error 7822)`,
    );
  }
  // The schema checks the reference's shape; its check letter only HMRC's algorithm can.
  const aoref = h.accountsOfficeRef === null ? null : accountsOfficeRefProblem(h.accountsOfficeRef);
  if (aoref && aoref.rule !== 'aoref.format') headerViolation(s, EMP, 'AORef', aoref.rule, aoref.message);
  for (const [field, utr] of [
    ['SAUTR', h.saUtr],
    ['COTAXRef', h.coTaxRef],
  ] as const) {
    const p = utr === null ? null : utrProblem(utr);
    if (p) headerViolation(s, EMP, field, p.rule, p.message);
  }
  if (h.saUtr !== null && h.coTaxRef !== null) headerViolation(s, EMP, 'SAUTR', 'SAUTR.0', 'SAUTR and COTAXRef are both given; only one may be (error 7952)');
  if (s.year && h.relatedTaxYear !== s.year.related) {
    headerViolation(
      s,
      'FullPaymentSubmission',
      'RelatedTaxYear',
      'RELATEDTAXYEAR.0',
      `RelatedTaxYear ${quote(h.relatedTaxYear ?? '')} does not match the ${s.year.id} schema, which needs ${s.year.related} (error 7889)`,
    );
  }
  if (h.relatedTaxYear && /^\d{2}-\d{2}$/.test(h.relatedTaxYear) && h.periodEnd && isIsoDate(h.periodEnd)) {
    const first = 2000 + Number(h.relatedTaxYear.slice(0, 2));
    const [from, to] = [`${first}-04-06`, `${first + 1}-04-05`];
    if (h.periodEnd < from || h.periodEnd > to) {
      headerViolation(
        s,
        IRH,
        'PeriodEnd',
        'RELATEDTAXYEAR.2',
        `PeriodEnd ${h.periodEnd} is outside tax year ${h.relatedTaxYear} (${from} to ${to}) (error 7844)`,
      );
    }
  }
}

/**
 * Checks one batch. Parsing, the rules and the totals run at once; the schema validation runs in
 * a worker thread and the returned promise gives the batch's violations when it is done, so the
 * next batch is read and parsed meanwhile.
 */
function checkBatch(s: State, batch: Batch, tail: string | null): Promise<Violation[]> {
  const xsd = s.ir && s.year ? validateFpsDocs(s.year, [fpsDocument(s, s.ir, batch.text, tail)]) : Promise.resolve([]);
  const first = s.records + 1;
  s.records += batch.employees.length;
  const parsed = batch.employees.map((emp) => {
    try {
      return parseEmployee(batch.text.substr(emp.offset, emp.length));
    } catch {
      return null;
    }
  });
  const labels = batch.employees.map((emp, i) => {
    const payId = parsed[i]?.employments[0]?.payId;
    return `employee ${first + i} (${payId ? `PayId ${payId}, ` : ''}line ${emp.line})`;
  });
  const issues = parsed.map((record) => {
    if (!record) return null;
    addToTotals(s.totals, record);
    return employeeIssues(record, s.ctx);
  });

  const { headEndLine } = s;
  return xsd.then((errors) => {
    const perRecord: Violation[][] = batch.employees.map(() => []);
    const outside: Violation[] = [];
    const flagged = new Set<string>();
    const last = batch.employees.at(-1)!;
    for (const e of errors) {
      const line = e.line === null ? null : e.line < headEndLine ? e.line : e.line - headEndLine + batch.line;
      const i =
        line === null
          ? -1
          : recordSpanning(
              batch.employees,
              line,
              (e) => e.line,
              (e) => e.endLine,
            );
      if (i !== -1) {
        perRecord[i]!.push({ record: labels[i]!, field: e.element ?? 'Employee', rule: 'xsd', message: e.message });
        for (const name of [e.element, ...e.missing]) flagged.add(`${i} ${name}`);
      } else if ((line !== null && line >= batch.line && line <= last.endLine) || tail !== null) {
        // Head errors appear in every batch's document: only the last one, which has the real tail, reports them.
        outside.push(xsdViolation(e, line));
      }
    }
    issues.forEach((list, i) => {
      if (!list) {
        if (![...flagged].some((f) => f.startsWith(`${i} `))) {
          perRecord[i]!.push({ record: labels[i]!, field: 'Employee', rule: 'xml.malformed', message: 'the element is not well-formed XML' });
        }
        return;
      }
      for (const issue of list) {
        // The schema's message on the same element says it already.
        if (flagged.has(`${i} ${issue.field.split('/').at(-1)}`)) continue;
        perRecord[i]!.push({ record: labels[i]!, field: issue.field, rule: issue.rule, message: issue.message });
      }
    });
    return [...perRecord.flat(), ...outside];
  });
}

/** Batches whose schema validation may run at once: two workers keep both cores busy with the parsing. */
const IN_FLIGHT = 2;

export async function validateFpsFile(path: string): Promise<{ totals: RenderTotals; violations: Violation[] }> {
  const s: State = {
    violations: [],
    totals: emptyTotals(),
    records: 0,
    head: '',
    headEndLine: 1,
    ir: null,
    year: null,
    ctx: { year: TAX_YEARS.at(-1)!, today: TAX_YEARS.at(-1)!.end },
  };
  let pending: Batch | null = null;
  let header: FpsHeader | null = null;
  const inFlight: Promise<Violation[]>[] = [];
  const settle = async (keep: number) => {
    while (inFlight.length > keep) s.violations.push(...(await inFlight.shift()!));
  };

  for await (const ev of scanFps(path)) {
    if (ev.kind === 'head') {
      s.head = ev.text;
      s.headEndLine = 1 + lines(ev.text);
      s.ir = findIrEnvelope(ev.text);
      s.year = (s.ir?.namespace && taxYearByNamespace(s.ir.namespace)) || null;
      try {
        header = parseHeader(`${ev.text}\n${closingTags(openElements(ev.text))}`);
      } catch (err) {
        s.violations.push({
          record: 'file',
          field: 'GovTalkMessage',
          rule: 'xml.malformed',
          message: `the message is not well-formed XML: ${err instanceof Error ? err.message : String(err)}`,
        });
      }
      // Without a known namespace the year-bound rules follow what the file says its year is.
      const year = s.year ?? TAX_YEARS.find((y) => y.related === header?.relatedTaxYear) ?? TAX_YEARS.at(-1)!;
      // HMRC judges "today" rules on the day it receives the file; the period's end keeps a re-check stable.
      s.ctx = { year, today: header?.periodEnd && isIsoDate(header.periodEnd) ? header.periodEnd : year.end };
      if (header) headerRules(s, header, s.ir);
    } else if (ev.kind === 'batch') {
      if (pending) inFlight.push(checkBatch(s, pending, null));
      await settle(IN_FLIGHT - 1);
      pending = ev;
    } else {
      if (pending) inFlight.push(checkBatch(s, pending, ev.text));
      await settle(0);
      if (!pending && s.ir && s.year) {
        for (const e of await validateFpsDocs(s.year, [fpsDocument(s, s.ir, '', ev.text)])) s.violations.push(xsdViolation(e, e.line));
      }
      const whole = `${s.head}${ev.text}`;
      for (const e of await validateEnvelopeDocs(s.ctx.year, [whole])) {
        const line = e.line === null || e.line < s.headEndLine ? e.line : e.line - s.headEndLine + ev.line;
        s.violations.push(xsdViolation(e, line));
      }
      const finalSubmission = /<([\w.-]+:)?FinalSubmission[\s/>]/.test(whole);
      if (/<([\w.-]+:)?CompressedPart[\s/>]/.test(whole)) {
        s.violations.push({
          record: 'FullPaymentSubmission',
          field: 'CompressedPart',
          rule: 'fps.compressed',
          message: 'the employees are sent compressed (CompressedPart); this validator does not expand it, so they were not checked and are not in the totals',
        });
      } else if (s.records === 0 && !finalSubmission && s.ir) {
        s.violations.push({
          record: 'FullPaymentSubmission',
          field: 'Employee',
          rule: 'FPS.1',
          message: 'the FPS has no Employee, CompressedPart or FinalSubmission (error 7877)',
        });
      }
    }
  }
  return { totals: { records: s.records, money: { ...s.totals } }, violations: s.violations };
}
