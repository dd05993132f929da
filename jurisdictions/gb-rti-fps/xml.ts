import { XMLBuilder, type XmlBuilderOptions } from 'fast-xml-parser';
import { decimal } from '../common.ts';
import type { FpsEmployee, FpsEmployer, FpsEmployment, FpsNiLetter } from './record.ts';
import { ENVELOPE_NS, type TaxYearSpec } from './tax-years.ts';
import { escapeText } from './text.ts';

/**
 * FPS records as XML, through fast-xml-parser's builder. One element per line, no indentation:
 * a file validator's line numbers then point at the element at fault, at little cost in size.
 *
 * The builder's own entity replacement runs five regular expressions over every value; most
 * values here are digits and dates, so it is off and values are escaped here instead.
 */
const options: XmlBuilderOptions & { jPath: boolean } = {
  ignoreAttributes: false,
  attributeNamePrefix: '@_',
  format: true,
  indentBy: '',
  processEntities: false,
  // Callbacks would otherwise receive a path string the builder rebuilds for every element.
  jPath: false,
};
const builder = new XMLBuilder(options);

type XmlObject = { readonly [key: string]: string | undefined | XmlObject | readonly (string | XmlObject)[] };

/**
 * Records come in few shapes (which optional elements are present, how many address lines), but
 * by the million. Building each through the builder costs more than the 50,000 records a second
 * the pipeline needs (measured: about 38,000/s for the whole render with the builder per record),
 * so the builder builds each shape once, with numbered markers for values, and records of that
 * shape fill its markers. NUL cannot occur in XML, so a marker cannot be confused with text.
 */
interface Template {
  readonly parts: readonly string[];
  readonly slots: readonly number[];
}
const templates = new Map<string, Template>();
const TEMPLATE_LIMIT = 10_000;

function escapeValue(value: string): string {
  return /[&<>"]/.test(value) ? escapeText(value).replace(/"/g, '&quot;') : value;
}

/** Leaf values in walk order (escaped) and a key naming the object's shape. */
function walk(node: XmlObject, values: string[]): string {
  let shape = '';
  for (const key in node) {
    const v = node[key];
    if (v === undefined) continue;
    if (typeof v === 'string') {
      values.push(escapeValue(v));
      shape += `${key};`;
    } else if (Array.isArray(v)) {
      shape += `${key}[`;
      for (const item of v as readonly (string | XmlObject)[]) {
        if (typeof item === 'string') {
          values.push(escapeValue(item));
          shape += '$,';
        } else shape += `{${walk(item, values)}},`;
      }
      shape += ']';
    } else shape += `${key}{${walk(v as XmlObject, values)}}`;
  }
  return shape;
}

/** The same object with each value replaced by its marker, numbered in walk order. */
function markers(node: XmlObject, next: { n: number }): XmlObject {
  const out: Record<string, XmlObject[string]> = {};
  const marker = () => `\u0000${next.n++}\u0000`;
  for (const key in node) {
    const v = node[key];
    if (v === undefined) continue;
    if (typeof v === 'string') out[key] = marker();
    else if (Array.isArray(v)) out[key] = (v as readonly (string | XmlObject)[]).map((item) => (typeof item === 'string' ? marker() : markers(item, next)));
    else out[key] = markers(v as XmlObject, next);
  }
  return out;
}

function template(node: XmlObject): Template {
  const pieces = builder.build(markers(node, { n: 0 })).split(/\u0000(\d+)\u0000/);
  return { parts: pieces.filter((_, i) => i % 2 === 0), slots: pieces.filter((_, i) => i % 2 === 1).map(Number) };
}

/** XML of `node`, built by the builder once per shape. */
export function buildXml(node: XmlObject): string {
  const values: string[] = [];
  const shape = walk(node, values);
  let t = templates.get(shape);
  if (!t) {
    if (templates.size >= TEMPLATE_LIMIT) templates.clear();
    t = template(node);
    templates.set(shape, t);
  }
  let xml = t.parts[0]!;
  for (let i = 0; i < t.slots.length; i++) xml += values[t.slots[i]!]! + t.parts[i + 1]!;
  return xml;
}

const money = (pence: number | null) => (pence === null ? undefined : decimal(pence));
const text = (value: string | null) => value ?? undefined;

function niLetterObject(ni: FpsNiLetter): XmlObject {
  return {
    NIletter: ni.letter,
    GrossEarningsForNICsInPd: money(ni.grossInPeriod),
    GrossEarningsForNICsYTD: money(ni.grossYtd),
    AtLELYTD: money(ni.atLelYtd),
    LELtoPTYTD: money(ni.lelToPtYtd),
    PTtoUELYTD: money(ni.ptToUelYtd),
    TotalEmpNICInPd: money(ni.employerInPeriod),
    TotalEmpNICYTD: money(ni.employerYtd),
    EmpeeContribnsInPd: money(ni.employeeInPeriod),
    EmpeeContribnsYTD: money(ni.employeeYtd),
  };
}

// Key order is element order: the schema's sequences are strict.
function employmentObject(e: FpsEmployment): XmlObject {
  return {
    EmployeeWorkplacePostcode: text(e.workplacePostcode),
    PayId: text(e.payId),
    PaymentToANonIndividual: e.paymentToNonIndividual ? 'yes' : undefined,
    LeavingDate: e.leavingDate ?? undefined,
    FiguresToDate: { TaxablePay: money(e.taxablePayYtd), TotalTax: money(e.totalTaxYtd) },
    Payment: {
      PayFreq: e.payFrequency,
      PmtDate: e.paymentDate,
      MonthNo: e.monthNo === null ? undefined : String(e.monthNo),
      PeriodsCovered: String(e.periodsCovered),
      PmtAfterLeaving: e.paymentAfterLeaving ? 'yes' : undefined,
      HoursWorked: e.hoursWorked,
      TaxCode: {
        '#text': e.taxCode.code,
        '@_BasisNonCumulative': e.taxCode.nonCumulative ? 'yes' : undefined,
        '@_TaxRegime': e.taxCode.regime ?? undefined,
      },
      TaxablePay: money(e.taxablePay),
      TaxDeductedOrRefunded: money(e.taxDeducted),
    },
    NIlettersAndValues: e.niLetters.map(niLetterObject),
  };
}

/** One `<Employee>` element, newline-terminated. */
export function employeeXml(r: FpsEmployee): string {
  const a = r.address;
  return buildXml({
    Employee: {
      EmployeeDetails: {
        NINO: r.nino ?? undefined,
        Name: { Fore: r.name.fore, Initials: text(r.name.initials), Sur: r.name.sur },
        Address: a ? { Line: a.lines, UKPostcode: text(a.ukPostcode), ForeignCountry: text(a.foreignCountry) } : undefined,
        BirthDate: r.birthDate ?? undefined,
        Gender: r.gender,
      },
      Employment: r.employments.map(employmentObject),
    },
  });
}

export interface EnvelopeInput {
  readonly year: TaxYearSpec;
  readonly employer: FpsEmployer;
  /** `IRheader/PeriodEnd`: the last day of the tax period. */
  readonly periodEnd: string;
  readonly test: boolean;
  readonly sender: 'Employer' | 'Agent';
  readonly generatedAt: Date;
  /** Set on the year's last FPS (tax month 12): FinalSubmission/ForYear. */
  readonly finalForYear: boolean;
}

const SLOT = 'EmployeesGoHere';

/**
 * The GovTalk message around the employees, split where they go. Credentials (SenderDetails) and
 * the IRmark are not here: the transport that submits the file adds them (see README).
 */
export function envelopeXml(m: EnvelopeInput): { head: string; tail: string } {
  const keys = [
    { '#text': m.employer.officeNo, '@_Type': 'TaxOfficeNumber' },
    { '#text': escapeText(m.employer.payeRef), '@_Type': 'TaxOfficeReference' },
  ];
  const xml = builder.build({
    '?xml': { '@_version': '1.0', '@_encoding': 'UTF-8' },
    GovTalkMessage: {
      '@_xmlns': ENVELOPE_NS,
      EnvelopeVersion: '2.0',
      Header: {
        MessageDetails: {
          Class: m.test ? 'HMRC-PAYE-RTI-FPS-TIL' : 'HMRC-PAYE-RTI-FPS',
          Qualifier: 'request',
          Function: 'submit',
          CorrelationID: '',
          Transformation: 'XML',
        },
      },
      GovTalkDetails: {
        Keys: { Key: keys },
        TargetDetails: { Organisation: 'HMRC' },
        ChannelRouting: { Channel: { Name: 'hubflow', Product: 'hubflow' }, Timestamp: m.generatedAt.toISOString().replace(/\.\d{3}Z$/, 'Z') },
      },
      Body: {
        IRenvelope: {
          '@_xmlns': m.year.namespace,
          IRheader: { Keys: { Key: keys }, PeriodEnd: m.periodEnd, DefaultCurrency: 'GBP', Sender: m.sender },
          FullPaymentSubmission: {
            EmpRefs: {
              OfficeNo: m.employer.officeNo,
              PayeRef: escapeText(m.employer.payeRef),
              AORef: m.employer.accountsOfficeRef,
              COTAXRef: m.employer.corporationTaxRef ?? undefined,
            },
            RelatedTaxYear: m.year.related,
            [SLOT]: 'x',
            FinalSubmission: m.finalForYear ? { ForYear: 'yes' } : undefined,
          },
        },
      },
    },
  });
  const at = xml.indexOf(`<${SLOT}>`);
  const after = xml.indexOf('\n', at) + 1;
  return { head: xml.slice(0, at), tail: xml.slice(after) };
}
