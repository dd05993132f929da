import { CHARSET_G, mask, outsideCharset, quote } from './text.ts';

/**
 * UK identifiers an FPS carries, with the checks HMRC publishes. Each check returns what is
 * wrong (rule id and message) or null when the value is acceptable.
 */

export interface Problem {
  readonly rule: string;
  readonly message: string;
}

const compact = (value: string) => value.replace(/\s+/g, '').toUpperCase();

/** The FPS schema's PAYENINOtype pattern, verbatim. */
const NINO_SCHEMA = /^([ACEHJLMOPRSWXY][A-CEGHJ-NPR-TW-Z]|B[A-CEHJ-NPR-TW-Z]|G[ACEGHJ-NPR-TW-Z]|[KT][A-CEGHJ-MPR-TW-Z]|N[A-CEGHJL-NPR-SW-Z]|Z[A-CEGHJ-NPR-TW-Y])[0-9]{6}[A-D ]$/;
// HMRC National Insurance Manual NIM39110.
const NEVER_FIRST = 'DFIQUV';
const NEVER_SECOND = 'DFIQUVO';
const UNALLOCATED = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

/** The stored form may carry spaces ('AB 12 34 56 C') and lower case; the FPS has neither. */
export const normaliseNino = compact;

export function ninoProblem(nino: string): Problem | null {
  const shown = mask(nino);
  if (!/^[A-Z]{2}\d{6}[A-Z ]$/.test(nino)) {
    return { rule: 'nino.format', message: `NINO ${shown} is not two capital letters, six digits and a suffix letter (${nino.length} characters)` };
  }
  if (NEVER_FIRST.includes(nino[0]!)) return { rule: 'nino.prefix', message: `NINO ${shown} starts with ${nino[0]}, a letter HMRC never uses first (NIM39110)` };
  if (NEVER_SECOND.includes(nino[1]!)) return { rule: 'nino.prefix', message: `NINO ${shown} has ${nino[1]} as second letter, which HMRC never uses (NIM39110)` };
  const prefix = nino.slice(0, 2);
  if (UNALLOCATED.has(prefix)) return { rule: 'nino.prefix', message: `NINO ${shown} has prefix ${prefix}, which HMRC never allocates (NIM39110)` };
  if (!'ABCD'.includes(nino[8]!)) {
    return { rule: 'nino.suffix', message: `NINO ${shown} has suffix ${quote(nino[8]!)}; the suffix is A, B, C or D (NIM39110)` };
  }
  if (!NINO_SCHEMA.test(nino)) return { rule: 'nino.format', message: `NINO ${shown} does not match the FPS schema's PAYENINOtype pattern` };
  return null;
}

export interface PayeReference {
  /** Tax office number: `EmpRefs/OfficeNo` and key TaxOfficeNumber. */
  readonly officeNo: string;
  /** Tax office reference: `EmpRefs/PayeRef` and key TaxOfficeReference. */
  readonly payeRef: string;
}

/** '123/AB45678' -> { officeNo: '123', payeRef: 'AB45678' }; null when there is no '/'. */
export function splitPayeReference(value: string): PayeReference | null {
  const m = /^\s*(\S*?)\s*\/\s*(.*?)\s*$/.exec(value);
  return m ? { officeNo: m[1]!, payeRef: m[2]!.toUpperCase() } : null;
}

export function officeNoProblem(officeNo: string): Problem | null {
  return /^[0-9]{3}$/.test(officeNo) ? null : { rule: 'payeref.office', message: `tax office number ${quote(officeNo)} is not three digits` };
}

export function payeRefProblem(payeRef: string): Problem | null {
  if (payeRef.length < 1 || payeRef.length > 10) {
    return { rule: 'payeref.length', message: `tax office reference ${quote(payeRef)} has ${payeRef.length} characters; it has 1 to 10` };
  }
  const bad = outsideCharset(payeRef, CHARSET_G);
  if (bad.length) return { rule: 'payeref.charset', message: `tax office reference ${quote(payeRef)} has characters the FPS does not allow: ${bad.map(quote).join(' ')}` };
  if (payeRef.startsWith(' ')) return { rule: 'payeref.charset', message: `tax office reference ${quote(payeRef)} starts with a space` };
  return null;
}

export const normaliseAccountsOfficeRef = compact;

/**
 * 3 digits, P, a letter, 7 digits and a digit or X. HMRC does not publish the algorithm of the
 * check character, so only the pattern is checked.
 */
export function accountsOfficeRefProblem(ref: string): Problem | null {
  if (/^[0-9]{3}P[A-Z][0-9]{7}[0-9X]$/.test(ref)) return null;
  return { rule: 'aoref.format', message: `Accounts Office reference ${quote(ref)} is not 3 digits, P, a letter, 7 digits and a digit or X (13 characters)` };
}

export const normaliseUtr = compact;

/** HMRC's UTR algorithm as its FPS business rule UTR.0 (error 7882) states it. */
export function utrProblem(utr: string): Problem | null {
  if (!/^[0-9]{10}$/.test(utr)) return { rule: 'utr.format', message: `UTR ${quote(utr)} is not ten digits` };
  const weights = [6, 7, 8, 9, 10, 5, 4, 3, 2];
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += weights[i]! * Number(utr[i + 1]);
  const check = 11 - (sum % 11);
  const expected = check > 9 ? check - 9 : check;
  return Number(utr[0]) === expected
    ? null
    : { rule: 'UTR.0', message: `UTR ${quote(utr)} fails HMRC's UTR check: its first digit should be ${expected} (error 7882)` };
}

export interface TaxCode {
  /** The code proper, as `Payment/TaxCode` holds it: '1257L', 'BR', 'K475', 'D0'. */
  readonly code: string;
  /** Scottish (S) or Welsh (C) rates: the TaxRegime attribute. */
  readonly regime: 'S' | 'C' | null;
  /** Week 1 / month 1 basis (suffix W1, M1 or X): the BasisNonCumulative attribute. */
  readonly nonCumulative: boolean;
}

/** The schema's pattern for the code proper, verbatim. */
const TAX_CODE = /^(([1-9][0-9]{0,5}[LMNPTY])|(BR)|(0T)|(NT)|(D[0-8])|([K][1-9][0-9]{0,5}))$/;

/** Reads a tax code as payroll writes it ('S1257L', '1257L W1', 'c0t') into the FPS's parts. */
export function parseTaxCode(value: string): TaxCode {
  const v = compact(value);
  const m = /^([SC])?(.+?)(W1|M1|X)?$/.exec(v);
  if (!m) return { code: v, regime: null, nonCumulative: false };
  return { code: m[2]!, regime: (m[1] as 'S' | 'C' | undefined) ?? null, nonCumulative: m[3] !== undefined };
}

export function taxCodeProblem(code: string): Problem | null {
  if (code.length >= 2 && code.length <= 7 && TAX_CODE.test(code)) return null;
  return {
    rule: 'taxcode.format',
    message: `tax code ${quote(code)} is not one HMRC issues (a number and L, M, N, P, T or Y; K and a number; BR, 0T, NT or D0-D8)`,
  };
}
