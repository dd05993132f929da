import { problem, quote, type IdProblem } from './problem.ts';

/**
 * The references a UK employer files under, with HMRC's rules:
 *
 * - Employer PAYE reference, printed '123/AB45678': a three-digit tax office number, '/', and the
 *   tax office reference of 1 to 10 characters of the FPS's character set G, not starting with a
 *   space (FPS schema: `EmpRefs/OfficeNo`, `EmpRefs/PayeRef`).
 * - Accounts Office reference, '123PW12345678': three digits, P, a check letter, seven digits and
 *   a digit or X (FPS schema: `AORef`). The check letter (fifth character) is the one HMRC's own
 *   reference checker computes (github.com/hmrc/reference-checker, EpayeReferenceChecker):
 *   weights 9 10 11 12 0 8 7 6 5 4 3 2 1 over the thirteen characters (letters by HMRC's table),
 *   the sum mod 23 looked up in ABCDEFGHXJKLMNYPQRSTZVW. Office 961 references ending in X have
 *   0 as their sixth character.
 * - Corporation Tax / Self Assessment UTR: ten digits, the first a check digit over the other
 *   nine (FPS business rule UTR.0, error 7882; the same checker).
 */

export interface PayeReference {
  /** Tax office number: `EmpRefs/OfficeNo` and key TaxOfficeNumber. */
  readonly officeNo: string;
  /** Tax office reference: `EmpRefs/PayeRef` and key TaxOfficeReference. */
  readonly payeRef: string;
}

/** FPS CharsetG: letters, digits, space and .,-()/=!"%&*;<>'+:? */
const CHARSET_G = /^[A-Za-z0-9 .,\-()/=!"%&*;<>'+:?]$/;

/** '123/AB45678' -> { officeNo: '123', payeRef: 'AB45678' }; null when there is no '/'. */
export function splitPayeReference(value: string): PayeReference | null {
  const m = /^\s*(\S*?)\s*\/\s*(.*?)\s*$/.exec(value);
  return m ? { officeNo: m[1]!, payeRef: m[2]!.toUpperCase() } : null;
}

export function officeNoProblem(officeNo: string): IdProblem | null {
  return /^[0-9]{3}$/.test(officeNo) ? null : problem('payeref.office', `tax office number ${quote(officeNo)} is not three digits`);
}

export function payeRefProblem(payeRef: string): IdProblem | null {
  if (payeRef.length < 1 || payeRef.length > 10) {
    return problem('payeref.length', `tax office reference ${quote(payeRef)} has ${payeRef.length} characters; it has 1 to 10`);
  }
  const bad = [...new Set([...payeRef].filter((c) => !CHARSET_G.test(c)))];
  if (bad.length)
    return problem('payeref.charset', `tax office reference ${quote(payeRef)} has characters the FPS does not allow: ${bad.map(quote).join(' ')}`);
  if (payeRef.startsWith(' ')) return problem('payeref.charset', `tax office reference ${quote(payeRef)} starts with a space`);
  return null;
}

/** The whole printed reference: a missing '/' is a format problem, otherwise each part's. */
export function payeReferenceProblem(value: string): IdProblem | null {
  const parts = splitPayeReference(value);
  if (!parts) return problem('payeref.format', `PAYE reference ${quote(value)} is not a tax office number, '/' and a reference`);
  return officeNoProblem(parts.officeNo) ?? payeRefProblem(parts.payeRef);
}

/** Spaces out, upper case: the form the FPS writes references in. */
export const compactReference = (value: string): string => value.replace(/\s+/g, '').toUpperCase();

const AOREF_WEIGHTS = [9, 10, 11, 12, 0, 8, 7, 6, 5, 4, 3, 2, 1];
const AOREF_LETTER_VALUES: Readonly<Record<string, number>> = {
  A: 33,
  B: 34,
  C: 35,
  D: 36,
  E: 37,
  F: 38,
  G: 39,
  H: 40,
  X: 41,
  J: 42,
  K: 43,
  L: 44,
  M: 45,
  N: 46,
  Y: 47,
  P: 48,
  Q: 49,
  R: 50,
  S: 51,
  T: 52,
  Z: 53,
  V: 54,
  W: 55,
  U: 56,
};
const AOREF_CHECK_LETTERS = 'ABCDEFGHXJKLMNYPQRSTZVW';

/** The check letter of a 13-character Accounts Office reference (its own fifth character is ignored). */
export function accountsOfficeCheckLetter(ref: string): string {
  let sum = 0;
  for (let i = 0; i < 13; i++) {
    const c = ref[i]!;
    sum += AOREF_WEIGHTS[i]! * (AOREF_LETTER_VALUES[c] ?? c.charCodeAt(0) - 48);
  }
  return AOREF_CHECK_LETTERS[sum % 23]!;
}

/** `ref` in its compact form. */
export function accountsOfficeRefProblem(ref: string): IdProblem | null {
  if (!/^[0-9]{3}P[A-Z][0-9]{7}[0-9X]$/.test(ref)) {
    return problem('aoref.format', `Accounts Office reference ${quote(ref)} is not 3 digits, P, a letter, 7 digits and a digit or X (13 characters)`);
  }
  const check = accountsOfficeCheckLetter(ref);
  if (ref[4] !== check)
    return problem('aoref.check', `Accounts Office reference ${quote(ref)} has check letter ${ref[4]}; HMRC's check gives ${check} for its digits`);
  if (ref.startsWith('961') && ref[12] === 'X' && ref[5] !== '0') {
    return problem('aoref.check', `Accounts Office reference ${quote(ref)} of office 961 ends in X, so its sixth character must be 0`);
  }
  return null;
}

const UTR_WEIGHTS = [6, 7, 8, 9, 10, 5, 4, 3, 2];
const UTR_CHECK_DIGITS = '21987654321';

/** The check digit (first digit) HMRC's UTR algorithm gives for the other nine. */
export function utrCheckDigit(nine: string): string {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += UTR_WEIGHTS[i]! * (nine.charCodeAt(i) - 48);
  return UTR_CHECK_DIGITS[sum % 11]!;
}

/** A UTR as HMRC letters print it ('12345 67890K'): spaces out, the trailing K dropped. */
export const compactUtr = (value: string): string => compactReference(value).replace(/K$/, '');

/** `utr` in its compact form: ten digits. */
export function utrProblem(utr: string): IdProblem | null {
  if (!/^[0-9]{10}$/.test(utr)) return problem('utr.format', `UTR ${quote(utr)} is not ten digits`);
  const expected = utrCheckDigit(utr.slice(1));
  return utr[0] === expected ? null : problem('UTR.0', `UTR ${quote(utr)} fails HMRC's UTR check: its first digit should be ${expected} (error 7882)`);
}
