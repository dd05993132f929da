/**
 * What changes from one UK tax year to the next: HMRC publishes a new FPS schema (and namespace)
 * every year, the payment dates it accepts, and the National Insurance earnings limits. Adding a
 * year means adding an entry here and vendoring its schema files under `schema/<year>/`.
 */

export interface TaxYearSpec {
  /** As HMRC writes it in guidance and as the period ids use it: '2025-26'. */
  readonly id: string;
  /** `RelatedTaxYear` in the FPS: '25-26' (rule RELATEDTAXYEAR.0). */
  readonly related: string;
  /** 6 April and 5 April, inclusive. */
  readonly start: string;
  readonly end: string;
  readonly namespace: string;
  /** Vendored schema files, relative to `schema/`. */
  readonly fpsXsd: string;
  readonly envelopeXsd: string;
  /** The schema's lower bound for `LeavingDate`. */
  readonly leavingDateMin: string;
  /** Monthly Class 1 NIC earnings limits in pence: LEL, primary threshold, UEL. */
  readonly monthlyNic: { readonly lel: number; readonly pt: number; readonly uel: number };
}

const NS = 'http://www.govtalk.gov.uk/taxation/PAYE/RTI/FullPaymentSubmission';

export const TAX_YEARS: readonly TaxYearSpec[] = [
  {
    id: '2025-26',
    related: '25-26',
    start: '2025-04-06',
    end: '2026-04-05',
    namespace: `${NS}/25-26/1`,
    fpsXsd: '2025-26/FullPaymentSubmission-2026-v1-0.xsd',
    envelopeXsd: '2025-26/envelope-v2-0-HMRC.xsd',
    leavingDateMin: '2019-04-06',
    monthlyNic: { lel: 54_200, pt: 104_800, uel: 418_900 },
  },
  {
    id: '2026-27',
    related: '26-27',
    start: '2026-04-06',
    end: '2027-04-05',
    namespace: `${NS}/26-27/1`,
    fpsXsd: '2026-27/FullPaymentSubmission-2027-v1-0.xsd',
    envelopeXsd: '2026-27/envelope-v2-0-HMRC.xsd',
    leavingDateMin: '2020-04-06',
    monthlyNic: { lel: 55_900, pt: 104_800, uel: 418_900 },
  },
];

export const ENVELOPE_NS = 'http://www.govtalk.gov.uk/CM/envelope';

export function taxYearById(id: string): TaxYearSpec | undefined {
  return TAX_YEARS.find((y) => y.id === id);
}

export function taxYearByNamespace(namespace: string): TaxYearSpec | undefined {
  return TAX_YEARS.find((y) => y.namespace === namespace);
}
