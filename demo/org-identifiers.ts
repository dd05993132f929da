import { bn9Problem, compactBn, programAccountProblem } from '../transforms/identifiers/bn.ts';
import { elevenProofCheckDigit, elevenProofValid, isDigits, luhnCheckDigit, luhnValid, mod97 } from '../transforms/identifiers/checksums.ts';
import { compactEin, EIN_PREFIXES, einProblem } from '../transforms/identifiers/ein.ts';
import {
  accountsOfficeCheckLetter,
  accountsOfficeRefProblem,
  compactReference,
  compactUtr,
  payeReferenceProblem,
  utrCheckDigit,
  utrProblem,
} from '../transforms/identifiers/paye.ts';
import { digits, int, letters, pick, type Rng } from './prng.ts';

/**
 * Employer and legal-entity registrations that payroll filings quote: generators of valid
 * references and validators that say what is wrong (null when valid). The references the
 * filings carry (EIN, BN, PAYE and Accounts Office references, UTR) are judged by the filings'
 * own rules, in transforms/identifiers.
 */

type Validator = (value: string) => string | null;
const compact = (value: string) => value.replace(/[\s-]/g, '').toUpperCase();
const pad = (n: number, w: number) => String(n).padStart(w, '0');

// US Employer Identification Number: the two-digit prefix is one an IRS campus assigns.
export function generateEin(rng: Rng): string {
  return `${pick(rng, EIN_PREFIXES)}-${digits(rng, 7)}`;
}

export const validateEin: Validator = (value) => {
  const ein = compactEin(value);
  return ein ? (einProblem(ein)?.message ?? null) : 'not nine digits (XX-XXXXXXX)';
};

// Canadian Business Number: nine digits, the last a Luhn check digit; a program account adds
// two letters (RP = payroll deductions) and a four-digit reference.
export function generateBn(rng: Rng): string {
  const partial = `${int(rng, 1, 9)}${digits(rng, 7)}`;
  return `${partial}${luhnCheckDigit(partial)}`;
}

/** BN15, e.g. the payroll account `123456782RP0001`. */
export function generateBnProgramAccount(rng: Rng, bn: string, program = 'RP'): string {
  return `${bn}${program}${pad(rng.next() < 0.9 ? 1 : int(rng, 2, 3), 4)}`;
}

export const validateBn: Validator = (value) => {
  const v = compactBn(value);
  return (v.length === 9 ? bn9Problem(v) : programAccountProblem(v))?.message ?? null;
};

// UK PAYE employer reference: a 3-digit tax office number, '/', and a reference.
export function generatePayeReference(rng: Rng): string {
  return `${pad(int(rng, 1, 999), 3)}/${letters(rng, 2)}${digits(rng, int(rng, 3, 6))}`;
}

export const validatePayeReference: Validator = (value) => payeReferenceProblem(value)?.message ?? null;

// UK Accounts Office reference: 3 digits, P, HMRC's check letter, 8 digits.
export function generateAccountsOfficeReference(rng: Rng): string {
  const draft = `${pad(int(rng, 120, 961), 3)}P?${digits(rng, 8)}`;
  return draft.replace('?', accountsOfficeCheckLetter(draft));
}

export const validateAccountsOfficeReference: Validator = (value) => accountsOfficeRefProblem(compactReference(value))?.message ?? null;

// UK Unique Taxpayer Reference (Corporation Tax): the first digit checks the other nine.
export function generateUtr(rng: Rng): string {
  const nine = digits(rng, 9);
  return `${utrCheckDigit(nine)}${nine}`;
}

export const validateUtr: Validator = (value) => utrProblem(compactUtr(value))?.message ?? null;

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
