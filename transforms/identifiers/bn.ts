import { luhnValid } from './checksums.ts';
import { problem, type IdProblem } from './problem.ts';

/**
 * Canadian Business Number (CRA): nine digits identifying the business, the ninth a Luhn check
 * digit (BN9); a program account adds the two-letter program identifier and a four-digit
 * reference numbered from 0001 (BN15, e.g. the first payroll account 123456782RP0001). T4 slips
 * are filed under the payroll deductions (RP) account (schema type bnRPType).
 */

/** A BN as people write it ('123456782 RP 0001'): spaces and dashes out, letters upper case. */
export function compactBn(value: string): string {
  return value.replace(/[\s-]/g, '').toUpperCase();
}

export function bn9Problem(value: string): IdProblem | null {
  if (!/^\d{9}$/.test(value)) return problem('bn.format', `business number must be 9 digits, found '${value}'`);
  if (!luhnValid(value)) return problem('bn.luhn', `business number ${value} fails the Luhn (mod 10) check digit`);
  return null;
}

/** Any program account (schema bnType), e.g. a transmitter's bn15. */
export function programAccountProblem(value: string): IdProblem | null {
  const m = /^(\d{9})[A-Z]{2}(\d{4})$/.exec(value);
  if (!m) return problem('bn.format', `program account must be 9 digits, 2 letters and 4 digits, found '${value}'`);
  if (m[2] === '0000') return problem('bn.reference', `program account ${value} has reference 0000, which CRA never issues`);
  return bn9Problem(m[1]!);
}

/** The payroll program account (schema bnRPType): BN9, 'RP', a 4-digit reference other than 0000. */
export function payrollAccountProblem(value: string): IdProblem | null {
  const m = /^(\d{9})([A-Za-z]{2})(\d{4})$/.exec(value);
  if (!m) return problem('bn.format', `payroll account must be 9 digits, RP and 4 digits (123456782RP0001), found '${value}'`);
  if (m[2] !== 'RP') return problem('bn.program', `payroll account ${value} is a '${m[2]}' program account; T4 slips are filed under the payroll (RP) account`);
  return programAccountProblem(value);
}
