import { problem, type IdProblem } from './problem.ts';

/**
 * US Employer Identification Number: nine digits, printed XX-XXXXXXX, no check digit. Its first
 * two digits are the prefix of the IRS campus or channel that assigned it (IRS, "How EINs are
 * assigned and valid EIN prefixes"); a number with any other prefix was never issued.
 */
export const EIN_PREFIXES_BY_CAMPUS: Readonly<Record<string, readonly number[]>> = {
  Andover: [10, 12],
  Atlanta: [60, 67],
  Austin: [50, 53],
  Brookhaven: [1, 2, 3, 4, 5, 6, 11, 13, 14, 16, 21, 22, 23, 25, 34, 51, 52, 54, 55, 56, 57, 58, 59, 65],
  Cincinnati: [30, 32, 35, 36, 37, 38, 61],
  Fresno: [15, 24],
  'Kansas City': [40, 44],
  Memphis: [94, 95],
  Ogden: [80, 90],
  Philadelphia: [33, 39, 41, 42, 43, 46, 48, 62, 63, 64, 66, 68, 71, 72, 73, 74, 75, 76, 77, 85, 86, 87, 88, 91, 92, 93, 98, 99],
  Internet: [20, 26, 27, 45, 46, 47, 81, 82, 83, 84, 85, 86, 87, 88],
  'Small Business Administration': [31],
};

/** Every prefix some campus assigns, two digits each, in ascending order. */
export const EIN_PREFIXES: readonly string[] = [...new Set(Object.values(EIN_PREFIXES_BY_CAMPUS).flat())]
  .sort((a, b) => a - b)
  .map((n) => String(n).padStart(2, '0'));

/** The EIN as stored ('12-3456789' or '123456789') in its nine-digit form, or null. */
export function compactEin(stored: string): string | null {
  const m = /^(\d{2})-?(\d{7})$/.exec(stored.trim());
  return m ? `${m[1]}${m[2]}` : null;
}

/** `value` is the compact nine digits. */
export function einProblem(value: string): IdProblem | null {
  if (!/^\d{9}$/.test(value)) return problem('ein.format', `EIN must be nine digits, found '${value}'`);
  const prefix = value.slice(0, 2);
  return EIN_PREFIXES.includes(prefix) ? null : problem('ein.prefix', `EIN prefix ${prefix} is not one the IRS assigns, found '${value}'`);
}
