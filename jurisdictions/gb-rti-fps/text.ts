/**
 * HMRC's FPS character sets and how free text from the hub is brought into them.
 *
 * The schema allows only unaccented Latin letters in names (CharsetD) and addresses (CharsetG).
 * Accented Latin letters are folded to their base letter (José -> Jose, Ødegård -> Odegard):
 * the name stays recognisable to a reader and to HMRC's matching. Letters of other scripts
 * (Chinese, Greek, Cyrillic, Arabic...) have no single agreed romanisation, so folding them would
 * invent a name: such values are rejected and the employee's romanised name must be recorded.
 */
import { anyOf, LATIN_LETTERS, TYPOGRAPHIC_PUNCTUATION } from '../../transforms/latin.ts';

const FOLD_CHARS = anyOf(LATIN_LETTERS);
const PUNCTUATION_CHARS = anyOf(TYPOGRAPHIC_PUNCTUATION);

/** FPS CharsetD (names), CharsetG (addresses, references), CharsetB (postcodes). */
export const CHARSET_D = /^[A-Za-z \-']*$/;
export const CHARSET_G = /^[A-Za-z0-9 .,\-()/=!"%&*;<>'+:?]*$/;
export const CHARSET_B = /^[A-Za-z0-9 ]*$/;

/** Folds accents and typographic punctuation and collapses spaces; other characters are kept. */
export function fold(value: string): string {
  // Plain ASCII is by far the common case: skip the Unicode work for it.
  if (/^[\x20-\x7E]*$/.test(value)) return value.replace(/ {2,}/g, ' ').trim();
  return value
    .replace(FOLD_CHARS, (c) => LATIN_LETTERS[c] ?? c)
    .replace(PUNCTUATION_CHARS, (c) => TYPOGRAPHIC_PUNCTUATION[c] ?? c)
    .normalize('NFD')
    .replace(/\p{M}/gu, '')
    .normalize('NFC')
    .replace(/\s+/g, ' ')
    .trim();
}

/** Letters outside A-Z that folding cannot turn into Latin ones (another script). */
export function nonLatinLetters(value: string): string[] {
  const folded = fold(value);
  return [...new Set(folded.match(/[^\x00-\x7F]/gu) ?? [])].filter((c) => /\p{L}/u.test(c));
}

/** Characters of `value` not in `charset` (a one-character-class regex), for messages. */
export function outsideCharset(value: string, charset: RegExp): string[] {
  return [...new Set([...value].filter((c) => !charset.test(c)))];
}

/** Text content for XML: only & < > need escaping there. */
export function escapeText(value: string): string {
  return /[&<>]/.test(value) ? value.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;') : value;
}

/** National ids are masked in messages; values quoted with invisible characters shown as code points. */
export { mask, quote } from '../../transforms/identifiers/problem.ts';
