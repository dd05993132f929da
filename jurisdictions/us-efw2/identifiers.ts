import type { IdProblem } from '../../transforms/identifiers/problem.ts';

/**
 * The submitter's id with SSA. The SSN and EIN rules an EFW2 is checked against are SSA's and
 * the IRS's, in transforms/identifiers (ssn.ts, ein.ts).
 */

/** SSA Business Services Online user id: eight letters or digits. */
export function bsoUserIdRule(value: string): IdProblem | null {
  return /^[A-Z0-9]{8}$/.test(value)
    ? null
    : { rule: 'bso.userId', message: `BSO user id must be eight letters or digits, found '${value}' (${value.length} characters)` };
}
