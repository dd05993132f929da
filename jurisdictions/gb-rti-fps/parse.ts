import { XMLParser } from 'fast-xml-parser';
import type { FpsEmployee, FpsEmployment, FpsNiLetter } from './record.ts';

/**
 * Reads FPS XML back into FPS records, whatever namespace prefixes the producer chose. Values are
 * kept as written (no number parsing) so the rules judge what the file says; an element the file
 * lacks reads as null or empty, and the schema validation reports it.
 */

const ARRAYS = new Set(['Employment', 'NIlettersAndValues', 'Line', 'Fore', 'Key']);
const parser = new XMLParser({
  // Callbacks would otherwise receive a path string the parser rebuilds for every element.
  jPath: false,
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  removeNSPrefix: true,
  parseTagValue: false,
  parseAttributeValue: false,
  // A value is judged as written: 'AB123456 ' (a blank NINO suffix) is not 'AB123456'.
  trimValues: false,
  isArray: (name) => ARRAYS.has(name),
});

type Node = Readonly<Record<string, unknown>>;

const node = (v: unknown): Node => (v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : {});
const list = (v: unknown): unknown[] => (Array.isArray(v) ? v : v === undefined ? [] : [v]);

/** Text of an element (with or without attributes); null when the element is absent. */
function text(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v === 'string') return v;
  if (typeof v === 'object' && !Array.isArray(v)) {
    const t = (v as Node)['#text'];
    return t === undefined ? '' : String(t);
  }
  return String(v);
}

const attr = (v: unknown, name: string): string | null => text(node(v)[`@_${name}`]);

/** '1234.56' -> 123456 pence; null when absent or not in the FPS's money format. */
export function pence(value: string | null): number | null {
  if (value === null) return null;
  const m = /^(-?)(0|[1-9][0-9]*)\.([0-9]{2})$/.exec(value);
  if (!m) return null;
  const n = Number(m[2]) * 100 + Number(m[3]);
  return m[1] ? -n : n;
}

function niLetter(v: unknown): FpsNiLetter {
  const n = node(v);
  const m = (k: string) => pence(text(n[k]));
  return {
    letter: text(n.NIletter) ?? '',
    grossInPeriod: m('GrossEarningsForNICsInPd'),
    grossYtd: m('GrossEarningsForNICsYTD'),
    atLelYtd: m('AtLELYTD'),
    lelToPtYtd: m('LELtoPTYTD'),
    ptToUelYtd: m('PTtoUELYTD'),
    employerInPeriod: m('TotalEmpNICInPd'),
    employerYtd: m('TotalEmpNICYTD'),
    employeeInPeriod: m('EmpeeContribnsInPd'),
    employeeYtd: m('EmpeeContribnsYTD'),
  };
}

function employment(v: unknown): FpsEmployment {
  const e = node(v);
  const figures = node(e.FiguresToDate);
  const p = node(e.Payment);
  const monthNo = text(p.MonthNo);
  const regime = attr(p.TaxCode, 'TaxRegime');
  return {
    payId: text(e.PayId),
    workplacePostcode: text(e.EmployeeWorkplacePostcode),
    paymentToNonIndividual: e.PaymentToANonIndividual !== undefined,
    leavingDate: text(e.LeavingDate),
    taxablePayYtd: pence(text(figures.TaxablePay)),
    totalTaxYtd: pence(text(figures.TotalTax)),
    payFrequency: text(p.PayFreq) ?? '',
    paymentDate: text(p.PmtDate) ?? '',
    monthNo: monthNo !== null && /^\d+$/.test(monthNo) ? Number(monthNo) : null,
    periodsCovered: Number(text(p.PeriodsCovered) ?? 1),
    paymentAfterLeaving: p.PmtAfterLeaving !== undefined,
    hoursWorked: text(p.HoursWorked) ?? '',
    taxCode: {
      code: text(p.TaxCode) ?? '',
      regime: regime === 'S' || regime === 'C' ? regime : null,
      nonCumulative: attr(p.TaxCode, 'BasisNonCumulative') === 'yes',
    },
    taxablePay: pence(text(p.TaxablePay)),
    taxDeducted: pence(text(p.TaxDeductedOrRefunded)),
    niLetters: list(e.NIlettersAndValues).map(niLetter),
  };
}

/**
 * One `<Employee>` element's text. Well-formedness is not checked here: the schema validation
 * of the same text reports it, with the line.
 */
export function parseEmployee(xml: string): FpsEmployee {
  const doc = node(parser.parse(xml));
  const emp = node(doc.Employee);
  const d = node(emp.EmployeeDetails);
  const name = node(d.Name);
  const address = d.Address === undefined ? null : node(d.Address);
  return {
    nino: text(d.NINO),
    name: { fore: list(name.Fore).map((f) => text(f) ?? ''), initials: text(name.Initials), sur: text(name.Sur) ?? '' },
    address: address && {
      lines: list(address.Line).map((l) => text(l) ?? ''),
      ukPostcode: text(address.UKPostcode),
      foreignCountry: text(address.ForeignCountry),
    },
    birthDate: text(d.BirthDate),
    gender: text(d.Gender) ?? '',
    employments: list(emp.Employment).map(employment),
  };
}

export interface FpsKey {
  readonly type: string;
  readonly value: string;
}

/** What the message says outside the employees. */
export interface FpsHeader {
  readonly className: string | null;
  readonly govTalkKeys: readonly FpsKey[];
  readonly irKeys: readonly FpsKey[];
  readonly periodEnd: string | null;
  readonly officeNo: string | null;
  readonly payeRef: string | null;
  readonly accountsOfficeRef: string | null;
  readonly saUtr: string | null;
  readonly coTaxRef: string | null;
  readonly relatedTaxYear: string | null;
}

const keys = (v: unknown): FpsKey[] => list(node(v).Key).map((k) => ({ type: attr(k, 'Type') ?? '', value: text(k) ?? '' }));

/** The message with its employees left out. Throws when it is not well-formed XML. */
export function parseHeader(xml: string): FpsHeader {
  const root = node(node(parser.parse(xml, true)).GovTalkMessage);
  const ir = node(node(root.Body).IRenvelope);
  const fps = node(ir.FullPaymentSubmission);
  const refs = node(fps.EmpRefs);
  return {
    className: text(node(node(root.Header).MessageDetails).Class),
    govTalkKeys: keys(node(root.GovTalkDetails).Keys),
    irKeys: keys(node(ir.IRheader).Keys),
    periodEnd: text(node(ir.IRheader).PeriodEnd),
    officeNo: text(refs.OfficeNo),
    payeRef: text(refs.PayeRef),
    accountsOfficeRef: text(refs.AORef),
    saUtr: text(refs.SAUTR),
    coTaxRef: text(refs.COTAXRef),
    relatedTaxYear: text(fps.RelatedTaxYear),
  };
}
