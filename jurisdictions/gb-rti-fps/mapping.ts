import type { Address, FilingEmployee, FilingEmployer, FilingPeriod } from '../types.ts';
import { taxMonthOf } from './calendar.ts';
import { compactNino } from '../../transforms/identifiers/nino.ts';
import { compactReference, compactUtr, splitPayeReference } from '../../transforms/identifiers/paye.ts';
import type { FpsAddress, FpsEmployee, FpsEmployer, FpsNiLetter } from './record.ts';
import { parseTaxCode } from './tax-code.ts';
import type { TaxYearSpec } from './tax-years.ts';
import { fold } from './text.ts';

/**
 * Canonical records -> FPS records. Pure and total: bad input still maps (to something the rules
 * then reject), so validation can report every problem of a record at once.
 */

export const LINE_MAX = 35;

/** Splits text into lines of at most `max` characters at spaces; a longer word stays whole. */
export function wrap(text: string, max = LINE_MAX): string[] {
  if (text.length <= max) return text ? [text] : [];
  const lines: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if (!word) continue;
    if (line && line.length + 1 + word.length > max) {
      // A comma that ended up at a line break says nothing.
      lines.push(line.replace(/,$/, ''));
      line = word;
    } else {
      line = line ? `${line} ${word}` : word;
    }
  }
  if (line) lines.push(line);
  return lines;
}

// Made on first use: building it loads ICU's region names (tens of milliseconds and megabytes),
// which a process that only loads the filing DAG never needs.
let countryNames: Intl.DisplayNames | undefined;

/**
 * The English name of an ISO 3166-1 alpha-2 country code, or null when the hub's value is not
 * one (Intl throws on a malformed code such as 'G1' and knows no name for an unassigned one).
 */
export function countryName(code: string): string | null {
  const upper = code.trim().toUpperCase();
  if (!/^[A-Z]{2}$/.test(upper)) return null;
  countryNames ??= new Intl.DisplayNames(['en'], { type: 'region', fallback: 'none' });
  const name = countryNames.of(upper);
  return name && name !== 'Unknown Region' ? name : null;
}

/**
 * A UK address ends with its postcode in `UKPostcode`; a foreign one carries its postcode in the
 * last line and names its country in `ForeignCountry`, which the FPS requires for non-UK addresses.
 */
export function mapAddress(address: Address): FpsAddress {
  const uk = address.country.toUpperCase() === 'GB';
  const locality = uk ? [address.city, address.region] : [[address.city, address.region, address.postcode].filter(Boolean).join(' ')];
  const lines = [address.line1, address.line2, ...locality].flatMap((part) => (part ? wrap(fold(part)) : []));
  if (uk) return { lines, ukPostcode: address.postcode.trim().toUpperCase().replace(/\s+/g, ' ') || null, foreignCountry: null };
  return { lines, ukPostcode: null, foreignCountry: fold(countryName(address.country) ?? address.country) };
}

const PAY_FREQUENCIES: Readonly<Record<string, string>> = {
  monthly: 'M1',
  quarterly: 'M3',
  halfyearly: 'M6',
  biannually: 'M6',
  annually: 'MA',
  annual: 'MA',
  yearly: 'MA',
};

/** The FPS `PayFreq` of a hub pay frequency; null for one a monthly period cannot report. */
export function payFrequencyCode(frequency: string): string | null {
  return PAY_FREQUENCIES[frequency.toLowerCase().replace(/[\s_-]/g, '')] ?? null;
}

/**
 * Year-to-date earnings at the LEL, from LEL to PT and from PT to UEL. The hub holds no per-period
 * history, so the bands are derived from year-to-date gross against the monthly limits times the
 * months employed in the tax year so far: exact for steady monthly pay, an estimate otherwise.
 */
export function nicBands(grossYtd: number, months: number, limits: TaxYearSpec['monthlyNic']): Pick<FpsNiLetter, 'atLelYtd' | 'lelToPtYtd' | 'ptToUelYtd'> {
  const lel = limits.lel * months;
  const pt = limits.pt * months;
  const uel = limits.uel * months;
  return {
    atLelYtd: grossYtd >= lel ? lel : 0,
    lelToPtYtd: grossYtd > lel ? Math.min(grossYtd, pt) - lel : 0,
    ptToUelYtd: grossYtd > pt ? Math.min(grossYtd, uel) - pt : 0,
  };
}

function monthsEmployed(hireDate: string, monthNo: number, year: TaxYearSpec): number {
  const first = hireDate >= year.start ? taxMonthOf(hireDate) : 1;
  return Math.max(1, monthNo - first + 1);
}

export function mapEmployee(e: FilingEmployee, period: FilingPeriod, year: TaxYearSpec): FpsEmployee {
  const monthNo = e.payDate ? taxMonthOf(e.payDate) : null;
  const letter = (e.niCategory ?? '').trim().toUpperCase();
  const bands =
    letter === 'X'
      ? { atLelYtd: 0, lelToPtYtd: 0, ptToUelYtd: 0 }
      : nicBands(e.yearToDate.gross, monthsEmployed(e.hireDate, monthNo ?? 1, year), year.monthlyNic);
  const leftBefore = e.terminationDate !== null && e.terminationDate < period.start;
  const given = fold(e.givenName);
  return {
    nino: e.nationalIdType === 'NINO' && e.nationalId?.trim() ? compactNino(e.nationalId) : null,
    name: { fore: given ? [given] : [], initials: null, sur: fold(e.familyName) },
    address: mapAddress(e.address),
    birthDate: e.birthDate,
    gender: e.gender ?? '',
    employments: [
      {
        payId: e.contractId,
        workplacePostcode: null,
        paymentToNonIndividual: false,
        // A leaving date after the period is reported in the period it falls in.
        leavingDate: e.terminationDate !== null && e.terminationDate <= period.end ? e.terminationDate : null,
        taxablePayYtd: e.yearToDate.gross,
        totalTaxYtd: e.yearToDate.incomeTax,
        payFrequency: payFrequencyCode(e.payFrequency) ?? e.payFrequency,
        paymentDate: e.payDate ?? '',
        monthNo,
        periodsCovered: 1,
        paymentAfterLeaving: leftBefore,
        // The hub has no hours band per payment: E is HMRC's "other".
        hoursWorked: 'E',
        taxCode: parseTaxCode(e.taxCode ?? ''),
        taxablePay: e.period.gross,
        taxDeducted: e.period.incomeTax,
        niLetters: [
          {
            letter,
            grossInPeriod: e.period.gross,
            grossYtd: e.yearToDate.gross,
            ...bands,
            employerInPeriod: e.period.employerSocial,
            employerYtd: e.yearToDate.employerSocial,
            employeeInPeriod: e.period.employeeSocial,
            employeeYtd: e.yearToDate.employeeSocial,
          },
        ],
      },
    ],
  };
}

export function mapEmployer(employer: FilingEmployer): FpsEmployer {
  const paye = splitPayeReference(employer.payrollRef ?? '');
  // HMRC letters print a Corporation Tax UTR with a trailing K; the FPS holds the ten digits.
  const utr = compactUtr(employer.taxId);
  return {
    officeNo: paye?.officeNo ?? '',
    payeRef: paye?.payeRef ?? '',
    accountsOfficeRef: compactReference(employer.accountsOfficeRef ?? ''),
    corporationTaxRef: utr || null,
  };
}
