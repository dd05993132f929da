import { elevenProofCheckDigit, elevenProofValid, isDigits, luhnCheckDigit, mod97 } from '../transforms/identifiers/checksums.ts';
import { compactNino, NINO_FIRST_LETTERS, NINO_SECOND_LETTERS, ninoPrefixProblem, ninoProblem } from '../transforms/identifiers/nino.ts';
import type { IdProblem } from '../transforms/identifiers/problem.ts';
import { sinProblem } from '../transforms/identifiers/sin.ts';
import { compactSsn, ssnProblem } from '../transforms/identifiers/ssn.ts';
import type { NationalIdType } from '../hub/entities.ts';
import { civil } from './calendar.ts';
import { digits, int, pick, type Rng } from './prng.ts';

/**
 * National ids of the countries the platform employs in: a generator of valid ids and a
 * validator per kind. Generators return the canonical stored form; validators accept the usual
 * spaces and dashes and return why a value is invalid, or null when it is valid. The ids the
 * filings carry (NINO, SSN, SIN) are judged by the same rules as the filings, in
 * transforms/identifiers: a generated id is one its filing accepts.
 */

export type Validator = (value: string) => string | null;

/** A shared rule as a Validator: its message, or null. */
export const messageOf = (p: IdProblem | null): string | null => p?.message ?? null;

const compact = (value: string) => value.replace(/[\s-]/g, '').toUpperCase();

// UK National Insurance number: the prefix is drawn again until HMRC would issue it.
export function generateNino(rng: Rng): string {
  for (;;) {
    const prefix = pick(rng, NINO_FIRST_LETTERS) + pick(rng, NINO_SECOND_LETTERS);
    if (!ninoPrefixProblem(prefix)) return `${prefix}${digits(rng, 6)}${pick(rng, ['A', 'B', 'C', 'D'])}`;
  }
}

export const validateNino: Validator = (value) => messageOf(ninoProblem(compactNino(value)));

// US Social Security number: drawn from the ranges SSA assigns, again if it hits a void number.
export function generateSsn(rng: Rng): string {
  for (;;) {
    let area = int(rng, 1, 898);
    if (area >= 666) area += 1;
    const ssn = `${String(area).padStart(3, '0')}-${String(int(rng, 1, 99)).padStart(2, '0')}-${String(int(rng, 1, 9999)).padStart(4, '0')}`;
    if (!ssnProblem(compactSsn(ssn)!)) return ssn;
  }
}

export const validateSsn: Validator = (value) => {
  const ssn = compactSsn(value);
  return ssn ? messageOf(ssnProblem(ssn)) : 'not nine digits (AAA-GG-SSSS)';
};

// Canadian Social Insurance Number; newcomers may hold a temporary resident's SIN (first digit 9).
export function generateSin(rng: Rng, temporary = false): string {
  const partial = `${temporary ? 9 : int(rng, 1, 7)}${digits(rng, 7)}`;
  return `${partial}${luhnCheckDigit(partial)}`;
}

export const validateSin: Validator = (value) => messageOf(sinProblem(value));

// French NIR (numéro de sécurité sociale): 13 digits and a key 97 - (n mod 97), Corsica's 2A/2B counted as 19/18.
const NIR_DEPARTMENTS = ['01', '06', '13', '31', '33', '35', '44', '59', '67', '69', '75', '76', '92', '93', '94', '2A', '2B', '971', '974'];

function nirKey(thirteen: string): string {
  const n = thirteen.replace('2A', '19').replace('2B', '18');
  return String(97 - mod97(n)).padStart(2, '0');
}

/** Sex digit, year and month follow the birth date, as on a real NIR. */
export function generateNir(rng: Rng, birthDay: number): string {
  const { year, month } = civil(birthDay);
  const abroad = rng.next() < 0.15;
  // Overseas departments have three digits and a two-digit commune; abroad is 99 and a country code.
  const place = abroad
    ? `99${int(rng, 100, 499)}`
    : ((d) => (d.length === 3 ? `${d}${digits(rng, 2)}` : `${d}${String(int(rng, 1, 899)).padStart(3, '0')}`))(pick(rng, NIR_DEPARTMENTS));
  const body = `${int(rng, 1, 2)}${String(year % 100).padStart(2, '0')}${String(month).padStart(2, '0')}${place}${String(int(rng, 1, 999)).padStart(3, '0')}`;
  return `${body}${nirKey(body)}`;
}

export const validateNir: Validator = (value) => {
  const v = compact(value);
  if (!/^[1-478]\d{4}(\d{2}|2[AB])\d{6}\d{2}$/.test(v)) return 'not 13 characters and a 2-digit key (sex, year, month, place, order)';
  const month = Number(v.slice(3, 5));
  if (month === 0 || (month > 12 && month < 20) || (month > 42 && month < 50)) return `month ${v.slice(3, 5)} is not used`;
  if (nirKey(v.slice(0, 13)) !== v.slice(13)) return 'key does not match (97 - number mod 97)';
  return null;
};

// Dutch BSN: nine digits passing the elfproef.
export function generateBsn(rng: Rng): string {
  for (;;) {
    const eight = `${int(rng, 1, 6)}${digits(rng, 7)}`;
    const check = elevenProofCheckDigit(eight);
    if (check !== null) return `${eight}${check}`;
  }
}

export const validateBsn: Validator = (value) => {
  const v = value.replace(/[\s.]/g, '');
  if (!isDigits(v, 9)) return 'not nine digits';
  if (/^0+$/.test(v)) return 'all zeros';
  return elevenProofValid(v) ? null : 'fails the elfproef (11-proof)';
};

// Spanish DNI (citizens) and NIE (foreigners, X/Y/Z standing for 0/1/2): letter = table[n mod 23].
const DNI_LETTERS = 'TRWAGMYFPDXBNJZSQVHLCKE';

export function generateDni(rng: Rng): string {
  const n = digits(rng, 8);
  return `${n}${DNI_LETTERS[Number(n) % 23]}`;
}

export function generateNie(rng: Rng): string {
  const prefix = pick(rng, ['X', 'Y', 'Z']);
  const n = digits(rng, 7);
  return `${prefix}${n}${DNI_LETTERS[Number(`${'XYZ'.indexOf(prefix)}${n}`) % 23]}`;
}

export const validateDniOrNie: Validator = (value) => {
  const v = compact(value);
  const m = /^(\d{8}|[XYZ]\d{7})([A-Z])$/.exec(v);
  if (!m) return 'not 8 digits (DNI) or X/Y/Z and 7 digits (NIE), then a letter';
  const n = Number(m[1]!.replace(/^[XYZ]/, (c) => String('XYZ'.indexOf(c))));
  return DNI_LETTERS[n % 23] === m[2] ? null : `letter should be ${DNI_LETTERS[n % 23]}`;
};

// German Steuerliche Identifikationsnummer: 10 digits (one repeated two or three times) and an ISO 7064 MOD 11,10 check digit.
function steuerIdCheckDigit(ten: string): number {
  let product = 10;
  for (let i = 0; i < 10; i++) {
    let sum = (ten.charCodeAt(i) - 48 + product) % 10;
    if (sum === 0) sum = 10;
    product = (sum * 2) % 11;
  }
  const check = 11 - product;
  return check === 10 ? 0 : check;
}

export function generateSteuerId(rng: Rng): string {
  for (;;) {
    const pool = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
    pool.splice(int(rng, 0, 9), 1);
    pool.push(pool[int(rng, 0, 8)]!);
    for (let i = pool.length - 1; i > 0; i--) {
      const j = int(rng, 0, i);
      [pool[i], pool[j]] = [pool[j]!, pool[i]!];
    }
    if (pool[0] === 0) continue;
    const ten = pool.join('');
    return `${ten}${steuerIdCheckDigit(ten)}`;
  }
}

export const validateSteuerId: Validator = (value) => {
  const v = value.replace(/[\s/]/g, '');
  if (!isDigits(v, 11)) return 'not eleven digits';
  if (v[0] === '0') return 'first digit 0 is never issued';
  const counts = new Map<string, number>();
  for (const c of v.slice(0, 10)) counts.set(c, (counts.get(c) ?? 0) + 1);
  const repeated = [...counts.entries()].filter(([, n]) => n > 1);
  if (repeated.length !== 1 || repeated[0]![1] > 3) return 'the first ten digits must repeat exactly one digit, two or three times';
  if (repeated[0]![1] === 3 && v.slice(0, 10).includes(repeated[0]![0].repeat(3))) return 'a digit appears three times in a row';
  return steuerIdCheckDigit(v.slice(0, 10)) === v.charCodeAt(10) - 48 ? null : 'check digit does not match (ISO 7064 MOD 11,10)';
};

const VALIDATORS: Record<NationalIdType, Validator> = {
  NINO: validateNino,
  SSN: validateSsn,
  SIN: validateSin,
  NIR: validateNir,
  BSN: validateBsn,
  DNI: (v) => (/^[XYZ]/i.test(v.trim()) ? 'a NIE, not a DNI' : validateDniOrNie(v)),
  NIE: (v) => (/^[XYZ]/i.test(v.trim()) ? validateDniOrNie(v) : 'a NIE starts with X, Y or Z'),
  STEUER_ID: validateSteuerId,
};

/** Validates a national id by its type, as stored next to it in the hub. */
export function validateNationalId(type: string, value: string): string | null {
  const validate = VALIDATORS[type as NationalIdType] as Validator | undefined;
  return validate ? validate(value) : `unknown national id type '${type}'`;
}

export * from './org-identifiers.ts';
