import { mask } from './text.ts';

/**
 * Identifier rules EFW2 files are checked against. Each returns the broken rule and a message
 * that shows the value masked (all but the last three characters), or null when valid.
 */

export interface Broken {
  readonly rule: string;
  readonly message: string;
}

/**
 * SSN as SSA assigns it since randomisation (25 June 2011): area never 000, 666 or 900-999,
 * group never 00, serial never 0000; no check digit. The file carries it without hyphens.
 * `value` is the compact nine digits.
 */
export function ssnRule(value: string): Broken | null {
  const shown = mask(value);
  if (!/^\d{9}$/.test(value)) return { rule: 'ssn.format', message: `SSN must be nine digits, found '${shown}' (${value.length} characters)` };
  const area = value.slice(0, 3);
  if (area === '000' || area === '666' || area[0] === '9') {
    return { rule: 'ssn.area', message: `SSN area ${area[0] === '9' ? '9xx (ITIN/ATIN range)' : area} is never issued, found '${shown}'` };
  }
  if (value.slice(3, 5) === '00') return { rule: 'ssn.group', message: `SSN group 00 is never issued, found '${shown}'` };
  if (value.slice(5) === '0000') return { rule: 'ssn.serial', message: `SSN serial 0000 is never issued, found '${shown}'` };
  return null;
}

/** The SSN as the hub may store it ('123-45-6789' or '123456789') in the file's form, or null. */
export function compactSsn(stored: string): string | null {
  const m = /^(\d{3})-?(\d{2})-?(\d{4})$/.exec(stored.trim());
  return m ? `${m[1]}${m[2]}${m[3]}` : null;
}

/**
 * EIN prefixes the IRS assigns, per campus and channel (IRS, "How EINs are assigned and valid
 * EIN prefixes"): 01-06, 10-16, 20-27, 30-48, 50-68, 71-77, 80-88, 90-95, 98, 99. Never
 * issued: 00, 07-09, 17-19, 28, 29, 49, 69, 70, 78, 79, 89, 96, 97.
 */
const EIN_PREFIX_RANGES: readonly (readonly [number, number])[] = [
  [1, 6], [10, 16], [20, 27], [30, 48], [50, 68], [71, 77], [80, 88], [90, 95], [98, 99],
];

export function validEinPrefix(prefix: number): boolean {
  return EIN_PREFIX_RANGES.some(([from, to]) => prefix >= from && prefix <= to);
}

/** `value` is the compact nine digits. */
export function einRule(value: string): Broken | null {
  if (!/^\d{9}$/.test(value)) return { rule: 'ein.format', message: `EIN must be nine digits, found '${value}'` };
  const prefix = value.slice(0, 2);
  return validEinPrefix(Number(prefix)) ? null : { rule: 'ein.prefix', message: `EIN prefix ${prefix} is not one the IRS assigns, found '${value}'` };
}

/** The EIN as stored ('12-3456789' or '123456789') in the file's form, or null. */
export function compactEin(stored: string): string | null {
  const m = /^(\d{2})-?(\d{7})$/.exec(stored.trim());
  return m ? `${m[1]}${m[2]}` : null;
}

/** SSA Business Services Online user id: eight letters or digits. */
export function bsoUserIdRule(value: string): Broken | null {
  return /^[A-Z0-9]{8}$/.test(value)
    ? null
    : { rule: 'bso.userId', message: `BSO user id must be eight letters or digits, found '${value}' (${value.length} characters)` };
}
