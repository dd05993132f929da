import { mask, problem, quote, type IdProblem } from './problem.ts';

/**
 * UK National Insurance number, by HMRC's National Insurance Manual NIM39110: two prefix
 * letters, six digits and a suffix letter A, B, C or D.
 *
 * - Neither prefix letter is D, F, I, Q, U or V; the second is never O.
 * - The prefixes BG, GB, KN, NK, NT, TN and ZZ are never allocated.
 * - Administrative numbers look like NINOs but are not: HMRC and DWP use the prefixes below for
 *   records of people who have no NINO (NIM39110, "Administrative Numbers").
 * - In electronic submissions an unknown suffix is a space (the FPS schema's PAYENINOtype:
 *   "RN000001A or RN000001(space)").
 *
 * The FPS schema's pattern encodes the letter rules and the never-allocated pairs, but lets the
 * administrative prefixes through: the rules here are the stricter of the two.
 */

const ALPHABET = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';
const NEVER_FIRST = 'DFIQUV';
const NEVER_SECOND = 'DFIOQUV';

/** Letters a prefix may start with, and may end with, in alphabetical order. */
export const NINO_FIRST_LETTERS = [...ALPHABET].filter((c) => !NEVER_FIRST.includes(c)).join('');
export const NINO_SECOND_LETTERS = [...ALPHABET].filter((c) => !NEVER_SECOND.includes(c)).join('');

export const NINO_NEVER_ALLOCATED: readonly string[] = ['BG', 'GB', 'KN', 'NK', 'NT', 'TN', 'ZZ'];

/** Administrative prefixes (NIM39110), with what HMRC uses them for. */
export const NINO_ADMINISTRATIVE: Readonly<Record<string, string>> = {
  OO: 'tax credit claims made before a NINO was held',
  CR: 'Account Investigations records',
  FY: 'former Attendance Allowance claims',
  MW: 'migrant workers, 1980 to 1987',
  NC: 'stakeholder pension dummy identifiers',
  PP: 'pension scheme dummy identifiers',
  PY: 'tax-only accounts created before 2003',
  PZ: 'tax-only accounts created before 2003',
};

export interface NinoOptions {
  /** Accept a space as the suffix: the form of an unknown suffix in RTI submissions. */
  readonly blankSuffix?: boolean;
}

/**
 * The NINO as a submission writes it: spaces out, upper case, and a suffix-less number ended
 * with the space that stands for an unknown suffix ('ab 12 34 56' -> 'AB123456 ').
 */
export function compactNino(value: string): string {
  const v = value.replace(/\s+/g, '').toUpperCase();
  return /^[A-Z]{2}\d{6}$/.test(v) ? `${v} ` : v;
}

/** Why a two-letter prefix is never a person's NINO, or null when it may be one. */
export function ninoPrefixProblem(prefix: string, shown = prefix): IdProblem | null {
  const admin = NINO_ADMINISTRATIVE[prefix];
  if (admin) return problem('nino.prefix', `NINO ${shown} has the administrative prefix ${prefix} (${admin}), which HMRC never issues to a person (NIM39110)`);
  if (NEVER_FIRST.includes(prefix[0]!)) return problem('nino.prefix', `NINO ${shown} starts with ${prefix[0]}, a letter HMRC never uses first (NIM39110)`);
  if (NEVER_SECOND.includes(prefix[1]!)) return problem('nino.prefix', `NINO ${shown} has ${prefix[1]} as second letter, which HMRC never uses (NIM39110)`);
  if (NINO_NEVER_ALLOCATED.includes(prefix)) return problem('nino.prefix', `NINO ${shown} has prefix ${prefix}, which HMRC never allocates (NIM39110)`);
  return null;
}

/** `nino` in its compact form (see compactNino). Messages show it masked to its last three characters. */
export function ninoProblem(nino: string, options: NinoOptions = {}): IdProblem | null {
  const shown = mask(nino);
  if (!/^[A-Z]{2}\d{6}[A-Z ]$/.test(nino)) {
    return problem('nino.format', `NINO ${shown} is not two capital letters, six digits and a suffix letter (${nino.length} characters)`);
  }
  const prefix = ninoPrefixProblem(nino.slice(0, 2), shown);
  if (prefix) return prefix;
  const suffix = nino[8]!;
  if ('ABCD'.includes(suffix) || (suffix === ' ' && options.blankSuffix)) return null;
  return suffix === ' '
    ? problem('nino.suffix', `NINO ${shown} has no suffix; the suffix is A, B, C or D (NIM39110)`)
    : problem(
        'nino.suffix',
        `NINO ${shown} has suffix ${quote(suffix)}; the suffix is A, B, C or D${options.blankSuffix ? ', or a space when unknown' : ''} (NIM39110)`,
      );
}
