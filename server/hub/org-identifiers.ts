import { elevenProofCheckDigit, elevenProofValid, isDigits, luhnCheckDigit, luhnValid, mod97 } from './checksums.ts';
import { digits, int, letters, pick, type Rng } from './prng.ts';

/**
 * Employer and legal-entity registrations that payroll filings quote: generators of valid
 * references and validators that say what is wrong (null when valid).
 */

type Validator = (value: string) => string | null;
const compact = (value: string) => value.replace(/[\s-]/g, '').toUpperCase();
const pad = (n: number, w: number) => String(n).padStart(w, '0');

// US Employer Identification Number: the two-digit prefix must be one the IRS assigns.
const EIN_PREFIXES = [
  ...range(1, 6), ...range(10, 16), ...range(20, 27), ...range(30, 39), ...range(40, 48),
  ...range(50, 68), ...range(71, 77), ...range(80, 88), ...range(90, 95), 98, 99,
].map((n) => pad(n, 2));

function range(from: number, to: number): number[] {
  return Array.from({ length: to - from + 1 }, (_, i) => from + i);
}

export function generateEin(rng: Rng): string {
  return `${pick(rng, EIN_PREFIXES)}-${digits(rng, 7)}`;
}

export const validateEin: Validator = (value) => {
  const m = /^(\d{2})-?(\d{7})$/.exec(value.trim());
  if (!m) return 'not nine digits (XX-XXXXXXX)';
  return EIN_PREFIXES.includes(m[1]!) ? null : `prefix ${m[1]} is not one the IRS assigns`;
};

// Canadian Business Number: nine digits, the last a Luhn check digit (as for a SIN); a program
// account adds two letters (RP = payroll deductions) and a four-digit reference.
const BN_PROGRAMS = ['RC', 'RP', 'RT', 'RM', 'RR', 'RZ', 'RD', 'RE', 'RG', 'RN', 'SL'];

export function generateBn(rng: Rng): string {
  const partial = `${int(rng, 1, 9)}${digits(rng, 7)}`;
  return `${partial}${luhnCheckDigit(partial)}`;
}

/** BN15, e.g. the payroll account `123456782RP0001`. */
export function generateBnProgramAccount(rng: Rng, bn: string, program = 'RP'): string {
  return `${bn}${program}${pad(rng.next() < 0.9 ? 1 : int(rng, 2, 3), 4)}`;
}

export const validateBn: Validator = (value) => {
  const v = compact(value);
  const m = /^(\d{9})(?:([A-Z]{2})(\d{4}))?$/.exec(v);
  if (!m) return 'not a 9-digit BN or a 15-character program account (BN, 2 letters, 4 digits)';
  if (!luhnValid(m[1]!)) return 'BN fails the Luhn check';
  if (m[2] && !BN_PROGRAMS.includes(m[2])) return `program identifier ${m[2]} is not a CRA program`;
  if (m[3] === '0000') return 'reference number 0000 is not issued';
  return null;
};

// UK PAYE employer reference: a 3-digit tax office number, '/', and up to 10 letters and digits.
export function generatePayeReference(rng: Rng): string {
  return `${pad(int(rng, 1, 999), 3)}/${letters(rng, 2)}${digits(rng, int(rng, 3, 6))}`;
}

export const validatePayeReference: Validator = (value) =>
  /^\d{3}\/[A-Z0-9]{1,10}$/.test(value.trim().toUpperCase()) ? null : 'not a tax office number, / and up to 10 letters or digits';

// UK Accounts Office reference: 3 digits, P, a check letter, 8 digits. The check letter is the
// weighted sum mod 23 looked up in HMRC's table (the rule HMRC's own reference checker applies).
const AOR_WEIGHTS = [9, 10, 11, 12, 0, 8, 7, 6, 5, 4, 3, 2, 1];
const AOR_TABLE = 'ABCDEFGHXJKLMNYPQRSTZVW';
const AOR_LETTER_VALUE: Record<string, number> = { P: 48, X: 41 };

function aorCheckLetter(ref: string): string {
  let sum = 0;
  for (let i = 0; i < 13; i++) {
    const c = ref[i]!;
    if (AOR_WEIGHTS[i]) sum += AOR_WEIGHTS[i]! * (AOR_LETTER_VALUE[c] ?? c.charCodeAt(0) - 48);
  }
  return AOR_TABLE[sum % 23]!;
}

export function generateAccountsOfficeReference(rng: Rng): string {
  const draft = `${pad(int(rng, 120, 961), 3)}P?${digits(rng, 8)}`;
  return draft.replace('?', aorCheckLetter(draft));
}

export const validateAccountsOfficeReference: Validator = (value) => {
  const v = compact(value);
  if (!/^\d{3}P[A-Z]\d{7}[\dX]$/.test(v)) return 'not 3 digits, P, a letter and 8 digits (the last may be X)';
  return aorCheckLetter(v) === v[4] ? null : `check letter should be ${aorCheckLetter(v)}`;
};

// UK Unique Taxpayer Reference (Corporation Tax): the first digit checks the other nine.
const UTR_WEIGHTS = [6, 7, 8, 9, 10, 5, 4, 3, 2];
const UTR_TABLE = '21987654321';

function utrCheckDigit(nine: string): string {
  let sum = 0;
  for (let i = 0; i < 9; i++) sum += UTR_WEIGHTS[i]! * (nine.charCodeAt(i) - 48);
  return UTR_TABLE[sum % 11]!;
}

export function generateUtr(rng: Rng): string {
  const nine = digits(rng, 9);
  return `${utrCheckDigit(nine)}${nine}`;
}

export const validateUtr: Validator = (value) => {
  const v = compact(value).replace(/K$/, '');
  if (!isDigits(v, 10)) return 'not ten digits';
  return utrCheckDigit(v.slice(1)) === v[0] ? null : 'check digit does not match';
};

// French SIREN (Luhn over 9 digits), SIRET (SIREN + establishment number, Luhn over 14), VAT number.
export function generateSiren(rng: Rng): string {
  const partial = `${int(rng, 3, 9)}${digits(rng, 7)}`;
  return `${partial}${luhnCheckDigit(partial)}`;
}

export function generateSiret(rng: Rng, siren: string): string {
  const partial = `${siren}${pad(int(rng, 1, 99), 4)}`;
  return `${partial}${luhnCheckDigit(partial)}`;
}

export function frenchVatNumber(siren: string): string {
  return `FR${pad((12 + 3 * (Number(siren) % 97)) % 97, 2)}${siren}`;
}

export const validateSiren: Validator = (value) => {
  const v = compact(value);
  if (!isDigits(v, 9) && !isDigits(v, 14)) return 'not 9 (SIREN) or 14 (SIRET) digits';
  return luhnValid(v) ? null : 'fails the Luhn check';
};

// Dutch RSIN: a BSN-shaped number for legal entities, same elfproef.
export function generateRsin(rng: Rng): string {
  for (;;) {
    const eight = `8${digits(rng, 7)}`;
    const check = elevenProofCheckDigit(eight);
    if (check !== null) return `${eight}${check}`;
  }
}

export const validateRsin: Validator = (value) => (elevenProofValid(compact(value)) ? null : 'not nine digits passing the elfproef');

// Spanish CIF: entity letter, 7 digits and a control digit (or letter, for some entity types).
function cifControl(seven: string): number {
  let sum = 0;
  for (let i = 0; i < 7; i++) {
    const d = seven.charCodeAt(i) - 48;
    if (i % 2 === 1) sum += d;
    else sum += Math.floor((d * 2) / 10) + ((d * 2) % 10);
  }
  return (10 - (sum % 10)) % 10;
}

export function generateCif(rng: Rng): string {
  const seven = digits(rng, 7);
  return `${pick(rng, ['A', 'B', 'B', 'B'])}${seven}${cifControl(seven)}`;
}

export const validateCif: Validator = (value) => {
  const v = compact(value);
  const m = /^([ABCDEFGHJNPQRSUVW])(\d{7})([0-9A-J])$/.exec(v);
  if (!m) return 'not an entity letter, 7 digits and a control character';
  const control = cifControl(m[2]!);
  return m[3] === String(control) || m[3] === 'JABCDEFGHI'[control] ? null : 'control character does not match';
};

// Spanish Código Cuenta de Cotización (social security employer account): province, number, mod-97 control.
export function generateCcc(rng: Rng): string {
  const body = `${pad(int(rng, 1, 52), 2)}${digits(rng, 7)}`;
  return `${body}${pad(mod97(body), 2)}`;
}

export const validateCcc: Validator = (value) => {
  const v = compact(value).replace(/\//g, '');
  if (!isDigits(v, 11)) return 'not eleven digits';
  return pad(mod97(v.slice(0, 9)), 2) === v.slice(9) ? null : 'control digits do not match (mod 97)';
};
