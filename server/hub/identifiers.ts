import { elevenProofCheckDigit, elevenProofValid, isDigits, luhnCheckDigit, luhnValid, mod97 } from './checksums.ts';
import { civil } from './calendar.ts';
import { digits, int, pick, type Rng } from './prng.ts';

/**
 * National identifiers of the countries the platform employs in: a generator of valid ids and a
 * validator per kind. Generators return the canonical stored form; validators accept the usual
 * spaces and dashes and return why a value is invalid, or null when it is valid.
 */

export type Validator = (value: string) => string | null;

const compact = (value: string) => value.replace(/[\s-]/g, '').toUpperCase();
const pad = (n: number, w: number) => String(n).padStart(w, '0');

// UK National Insurance number (HMRC NIM39110).
const NINO_FIRST = 'ABCEGHJKLMNOPRSTWXYZ'; // never D F I Q U V
const NINO_SECOND = 'ABCEGHJKLMNPRSTWXYZ'; // never D F I O Q U V
const NINO_UNALLOCATED = new Set(['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ']);

export function generateNino(rng: Rng): string {
  for (;;) {
    const prefix = pick(rng, NINO_FIRST) + pick(rng, NINO_SECOND);
    if (!NINO_UNALLOCATED.has(prefix)) return `${prefix}${digits(rng, 6)}${pick(rng, ['A', 'B', 'C', 'D'])}`;
  }
}

export const validateNino: Validator = (value) => {
  const v = compact(value);
  if (!/^[A-Z]{2}\d{6}[A-Z]$/.test(v)) return 'not two letters, six digits and a letter';
  if (!NINO_FIRST.includes(v[0]!)) return `first letter ${v[0]} is never issued`;
  if (!NINO_SECOND.includes(v[1]!)) return `second letter ${v[1]} is never issued`;
  if (NINO_UNALLOCATED.has(v.slice(0, 2))) return `prefix ${v.slice(0, 2)} is not allocated`;
  if (!'ABCD'.includes(v[8]!)) return `suffix ${v[8]} is not A, B, C or D`;
  return null;
};

// US Social Security number (SSA, since randomisation in 2011).
export function generateSsn(rng: Rng): string {
  let area = int(rng, 1, 898);
  if (area >= 666) area += 1;
  return `${pad(area, 3)}-${pad(int(rng, 1, 99), 2)}-${pad(int(rng, 1, 9999), 4)}`;
}

export const validateSsn: Validator = (value) => {
  const m = /^(\d{3})-?(\d{2})-?(\d{4})$/.exec(value.trim());
  if (!m) return 'not nine digits (AAA-GG-SSSS)';
  const area = Number(m[1]);
  if (area === 0) return 'area 000 is never issued';
  if (area === 666) return 'area 666 is never issued';
  if (area >= 900) return 'area 900-999 is never issued (ITINs and the like)';
  if (m[2] === '00') return 'group 00 is never issued';
  if (m[3] === '0000') return 'serial 0000 is never issued';
  return null;
};

// Canadian Social Insurance Number: Luhn; 0 unassigned, 8 not used for SINs, 9 = temporary resident.
export function generateSin(rng: Rng, temporary = false): string {
  const partial = `${temporary ? 9 : int(rng, 1, 7)}${digits(rng, 7)}`;
  return `${partial}${luhnCheckDigit(partial)}`;
}

export const validateSin: Validator = (value) => {
  const v = compact(value);
  if (!isDigits(v, 9)) return 'not nine digits';
  if (v[0] === '0') return 'first digit 0 is not assigned';
  if (v[0] === '8') return 'first digit 8 is not used for SINs';
  if (!luhnValid(v)) return 'fails the Luhn check';
  return null;
};

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
  const place = abroad ? `99${int(rng, 100, 499)}` : ((d) => (d.length === 3 ? `${d}${digits(rng, 2)}` : `${d}${String(int(rng, 1, 899)).padStart(3, '0')}`))(pick(rng, NIR_DEPARTMENTS));
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

export const NATIONAL_ID_TYPES = ['NINO', 'SSN', 'SIN', 'NIR', 'BSN', 'DNI', 'NIE', 'STEUER_ID'] as const;
export type NationalIdType = (typeof NATIONAL_ID_TYPES)[number];

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
