import type { FpsEmployee } from './record.ts';

/**
 * The FPS has no totals record: what a file "states" is the sum of its Payment figures, in pence.
 * The renderer and the file validator add up the same fields, so their totals can be compared.
 */
export interface FpsTotals {
  taxablePay: number;
  taxDeductedOrRefunded: number;
  employeeNics: number;
  employerNics: number;
}

export const emptyTotals = (): FpsTotals => ({ taxablePay: 0, taxDeductedOrRefunded: 0, employeeNics: 0, employerNics: 0 });

/** Adds a record's figures; a figure a file wrote unreadably (null) is not guessed. */
export function addToTotals(t: FpsTotals, r: FpsEmployee): void {
  for (const e of r.employments) {
    t.taxablePay += e.taxablePay ?? 0;
    t.taxDeductedOrRefunded += e.taxDeducted ?? 0;
    for (const ni of e.niLetters) {
      t.employeeNics += ni.employeeInPeriod ?? 0;
      t.employerNics += ni.employerInPeriod ?? 0;
    }
  }
}
