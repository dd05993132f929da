/**
 * What every identifier rule returns: null when the value is acceptable, otherwise the rule
 * broken (a short stable id such as `nino.prefix`) and a message that says why, citing the
 * authority. Messages never name a record or field: the filing rules that call them add both.
 */
export interface IdProblem {
  readonly rule: string;
  readonly message: string;
}

/** Personal ids never appear whole in messages: all but the last three characters are masked. */
export function mask(value: string): string {
  return value.length <= 3 ? '*'.repeat(value.length) : `${'*'.repeat(value.length - 3)}${value.slice(-3)}`;
}

/** A value quoted for a message, with characters that would be invisible shown as code points. */
export function quote(value: string): string {
  return `'${value.replace(/[\x00-\x1F\x7F]/g, (c) => `U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0')}`)}'`;
}

export const problem = (rule: string, message: string): IdProblem => ({ rule, message });
