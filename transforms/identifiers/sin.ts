import { luhnValid } from './checksums.ts';
import { mask, problem, type IdProblem } from './problem.ts';

/**
 * Canadian Social Insurance Number: nine digits passing Luhn (mod 10). The first digit tells
 * the region of issue (1-7); 9 is a temporary resident's SIN, which expires with the permit but
 * is valid on a T4 while it runs. 0 is never assigned and 8 is not used for individuals.
 */

/** What a T4 carries when the employee has not given a SIN (CRA: "enter nine zeros"). */
export const SIN_NOT_PROVIDED = '000000000';

/** The SIN without the spaces and dashes people type. */
export function compactSin(value: string): string {
  return value.replace(/[\s-]/g, '');
}

/** A temporary resident's SIN (first digit 9). */
export const isTemporarySin = (sin: string): boolean => compactSin(sin).startsWith('9');

/** Messages show the SIN masked to its last three digits. */
export function sinProblem(value: string): IdProblem | null {
  const v = compactSin(value);
  if (!/^\d{9}$/.test(v)) {
    const found = v.length === 9 ? `a character other than a digit in ${mask(v)}` : `${v.length} characters (${mask(v)})`;
    return problem('sin.format', `SIN must be 9 digits, found ${found}`);
  }
  if (v[0] === '0') return problem('sin.first-digit', `SIN ${mask(v)} starts with 0, which is never assigned`);
  if (v[0] === '8') return problem('sin.first-digit', `SIN ${mask(v)} starts with 8, which is not used for individuals`);
  if (!luhnValid(v)) return problem('sin.luhn', `SIN ${mask(v)} fails the Luhn (mod 10) check digit`);
  return null;
}
