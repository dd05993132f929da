import { luhnValid } from '../../server/hub/checksums.ts';
import { mask } from './charset.ts';

/**
 * Identifier rules the CRA schema does not enforce: it accepts any 1 to 9 digits as a SIN and
 * any nine digits as a business number. Each check returns what is wrong, or null when valid.
 */

export interface IdProblem {
  readonly rule: string;
  readonly message: string;
}

/** What the T4 carries when the employee has not given a SIN (CRA: "enter nine zeros"). */
export const SIN_NOT_PROVIDED = '000000000';

/** The SIN as the file writes it: digits only, without the spaces and dashes people type. */
export function compactSin(value: string): string {
  return value.replace(/[\s-]/g, '');
}

/**
 * Social Insurance Number: nine digits passing Luhn (mod 10). First digit 0 is unassigned and 8
 * is not used for individuals; 9 is a temporary resident's SIN, which is valid on a T4.
 */
export function sinProblem(value: string): IdProblem | null {
  const v = compactSin(value);
  if (!/^\d{9}$/.test(v)) {
    const found = v.length === 9 ? `a character other than a digit in ${mask(v)}` : `${v.length} characters (${mask(v)})`;
    return { rule: 'sin.format', message: `SIN must be 9 digits, found ${found}` };
  }
  if (v[0] === '0') return { rule: 'sin.first-digit', message: `SIN ${mask(v)} starts with 0, which is never assigned` };
  if (v[0] === '8') return { rule: 'sin.first-digit', message: `SIN ${mask(v)} starts with 8, which is not used for individuals` };
  if (!luhnValid(v)) return { rule: 'sin.luhn', message: `SIN ${mask(v)} fails the Luhn (mod 10) check digit` };
  return null;
}

/** Business number root: nine digits whose last is a Luhn check digit. */
export function bn9Problem(value: string): IdProblem | null {
  if (!/^\d{9}$/.test(value)) return { rule: 'bn.format', message: `business number must be 9 digits, found '${value}'` };
  if (!luhnValid(value)) return { rule: 'bn.luhn', message: `business number ${value} fails the Luhn (mod 10) check digit` };
  return null;
}

/** Payroll program account (schema bnRPType): BN9, 'RP', a 4-digit reference other than 0000. */
export function payrollAccountProblem(value: string): IdProblem | null {
  const m = /^(\d{9})([A-Za-z]{2})(\d{4})$/.exec(value);
  if (!m) return { rule: 'bn.format', message: `payroll account must be 9 digits, RP and 4 digits (123456782RP0001), found '${value}'` };
  if (m[2] !== 'RP') return { rule: 'bn.program', message: `payroll account ${value} is a '${m[2]}' program account; T4 slips are filed under the payroll (RP) account` };
  if (m[3] === '0000') return { rule: 'bn.reference', message: `payroll account ${value} has reference 0000, which CRA never issues` };
  return bn9Problem(m[1]!);
}

/** Any program account (schema bnType), for a transmitter's bn15. */
export function programAccountProblem(value: string): IdProblem | null {
  const m = /^(\d{9})[A-Z]{2}\d{4}$/.exec(value);
  if (!m) return { rule: 'bn.format', message: `program account must be 9 digits, 2 letters and 4 digits, found '${value}'` };
  return bn9Problem(m[1]!);
}

/** A BN as people write it ('123456782 RP 0001'): spaces and dashes out, letters upper case. */
export function compactBn(value: string): string {
  return value.replace(/[\s-]/g, '').toUpperCase();
}
