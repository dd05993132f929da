/**
 * Text as EFW2 takes it: ASCII, upper case. Accented Latin letters are folded to their base
 * letter (compatibility decomposition, then the combining marks dropped), which keeps the
 * name recognisable where rejecting it would hold back the W-2; letters that do not decompose
 * (ł, ø, ß, æ...) take their usual transliteration. Other scripts (Chinese, Greek, Cyrillic,
 * Arabic) have no such folding and are reported instead.
 */
import { anyOf, LATIN_LETTERS, TYPOGRAPHIC_PUNCTUATION } from '../../transforms/latin.ts';

const MARKS = /[\u0300-\u036f]/g;
const ASCII_PRINTABLE = /^[\x20-\x7e]*$/;

const SPECIAL = anyOf(LATIN_LETTERS);
const TYPOGRAPHIC = anyOf(TYPOGRAPHIC_PUNCTUATION);

const MEMO_SIZE = 20_000;
const memo = new Map<string, string>();

/** Folds to ASCII where a Latin equivalent exists, upper-cases and collapses white space. */
export function foldUpper(text: string): string {
  // Names, cities and streets repeat across a payroll: a bounded memo keeps the Unicode work
  // off the per-record path without letting memory grow with the file.
  const hit = memo.get(text);
  if (hit !== undefined) return hit;
  const ascii = ASCII_PRINTABLE.test(text)
    ? text
    : text
        // The whole letters first: NFKD would split ŀ into l and a middle dot.
        .replace(SPECIAL, (c) => LATIN_LETTERS[c]!)
        .normalize('NFKD')
        .replace(MARKS, '')
        .replace(TYPOGRAPHIC, (c) => TYPOGRAPHIC_PUNCTUATION[c]!);
  const folded = ascii.replace(/\s+/g, ' ').trim().toUpperCase();
  if (memo.size >= MEMO_SIZE) memo.clear();
  memo.set(text, folded);
  return folded;
}

/** The characters that are still not printable ASCII after folding, for messages. */
export function unwritable(folded: string): string[] {
  return [...new Set([...folded].filter((c) => !ASCII_PRINTABLE.test(c)))];
}

/** A person's name as written to the file: letters, spaces, hyphens and apostrophes. */
export const PERSON_NAME = /^[A-Z' -]+$/;

/** Cuts to a field's width: over-long names and addresses are truncated rather than rejected (see README). */
export function fit(text: string, width: number): string {
  return text.length <= width ? text : text.slice(0, width).trimEnd();
}

/** Masks all but the last three characters, so messages never carry a full national id. */
export { mask } from '../../transforms/identifiers/problem.ts';
