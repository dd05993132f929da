import { mask, problem, type IdProblem } from './problem.ts';

/**
 * US Social Security number. SSA never assigns (SSA POMS RM 10201.035, "Invalid SSNs"; SSN
 * randomization since 25 June 2011): area 000, 666 or 900-999 (the 9xx range holds IRS ITINs and
 * ATINs, and SSA's advertising range 987-65-4320 to 4329), group 00, serial 0000. There is no
 * check digit. Two numbers printed on specimen cards are void too: 078-05-1120 (a 1938 wallet
 * insert, voided by SSA) and 219-09-9999 (a 1940 Social Security Board pamphlet).
 */

/** What EFW2 writes when the employee's SSN is not known yet (corrected later on a W-2c). */
export const SSN_NOT_KNOWN = '000000000';

const SPECIMEN: Readonly<Record<string, string>> = {
  '078051120': 'printed on a 1938 wallet insert and voided by SSA',
  '219099999': 'printed on a 1940 Social Security Board pamphlet and never assigned',
};

/** The SSN as the hub may store it ('123-45-6789' or '123456789') in its nine-digit form, or null. */
export function compactSsn(stored: string): string | null {
  const m = /^(\d{3})-?(\d{2})-?(\d{4})$/.exec(stored.trim());
  return m ? `${m[1]}${m[2]}${m[3]}` : null;
}

/** `value` is the compact nine digits; messages show it masked to its last three. */
export function ssnProblem(value: string): IdProblem | null {
  const shown = mask(value);
  if (!/^\d{9}$/.test(value)) return problem('ssn.format', `SSN must be nine digits, found '${shown}' (${value.length} characters)`);
  const area = value.slice(0, 3);
  if (area === '000' || area === '666' || area[0] === '9') {
    return problem('ssn.area', `SSN area ${area[0] === '9' ? '9xx (ITIN/ATIN range)' : area} is never issued, found '${shown}'`);
  }
  if (value.slice(3, 5) === '00') return problem('ssn.group', `SSN group 00 is never issued, found '${shown}'`);
  if (value.slice(5) === '0000') return problem('ssn.serial', `SSN serial 0000 is never issued, found '${shown}'`);
  const specimen = SPECIMEN[value];
  if (specimen) return problem('ssn.specimen', `SSN '${shown}' is a specimen number, ${specimen}`);
  return null;
}
