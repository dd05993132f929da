/**
 * CRA's acceptable characters. CRA replaces any other character with a space on receipt, which
 * would mangle a name on the employee's tax record, so text is folded here first and what cannot
 * be folded is reported instead of being sent.
 */
import { LATIN_LETTERS, TYPOGRAPHIC_PUNCTUATION } from '../../transforms/latin.ts';

// The accented letters CRA's tables list (French); every other accent is folded away.
const FRENCH = 'àâçéèêëîïôûùÀÂÇÉÈÊËÎÏÔÛÙ';

/** Individual names: letters, French accents, space, hyphen, apostrophe, period. */
export const NAME_CHARS = new RegExp(`^[A-Za-z${FRENCH} '.\\-]*$`);
/** Addresses and organisation names: CRA's address table (letters, digits and & / , - ( ) { } [ ] # . '). */
export const ADDRESS_CHARS = new RegExp(`^[A-Za-z0-9${FRENCH} '&/,()\\[\\]{}#.\\-]*$`);

// Letters that do not decompose into a base letter and a mark, and typographic look-alikes; a
// backtick too, which CRA's tables lack (ASCII text takes no fold in the other formats).
const FOLD: Readonly<Record<string, string>> = { ...LATIN_LETTERS, ...TYPOGRAPHIC_PUNCTUATION, '`': "'" };

const ASCII_NAME = /^[A-Za-z '.-]*$/;
const ASCII_ADDRESS = /^[A-Za-z0-9 '&/,()[\]{}#.-]*$/;

export interface Folded {
  /** The text in acceptable characters, spaces collapsed and trimmed. */
  readonly text: string;
  /** Characters that have no acceptable form (non-Latin scripts, symbols), in order, once each. */
  readonly rejected: readonly string[];
}

/** Folds text into CRA's character set for names ('name') or addresses and organisations ('address'). */
export function fold(value: string, kind: 'name' | 'address'): Folded {
  const collapsed = value.replace(/\s+/g, ' ').trim();
  // Fast path: most names and addresses are plain ASCII already.
  if ((kind === 'name' ? ASCII_NAME : ASCII_ADDRESS).test(collapsed)) return { text: collapsed, rejected: [] };
  const allowed = kind === 'name' ? NAME_CHARS : ADDRESS_CHARS;
  const composed = collapsed.normalize('NFC');
  // Second fast path: French accents only, which CRA accepts as they are.
  if (allowed.test(composed)) return { text: composed, rejected: [] };
  let text = '';
  const rejected: string[] = [];
  for (const c of composed) {
    if (allowed.test(c)) {
      text += c;
      continue;
    }
    const mapped = FOLD[c] ?? c.normalize('NFKD').replace(/\p{M}/gu, '');
    if (mapped && allowed.test(mapped)) text += mapped;
    else if (!rejected.includes(c)) rejected.push(c);
  }
  return { text: text.replace(/ {2,}/g, ' ').trim(), rejected };
}

/** The first `max` characters, without a dangling space or hyphen where the cut fell. */
export function cut(text: string, max: number): string {
  if (text.length <= max) return text;
  const chars = [...text];
  return chars.length <= max
    ? text
    : chars
        .slice(0, max)
        .join('')
        .replace(/[ -]+$/, '');
}

/** Up to `lines` lines of at most `width` characters, broken at spaces; null when it does not fit. */
export function wrap(text: string, width: number, lines: number): string[] | null {
  const out: string[] = [];
  let line = '';
  for (const word of text.split(' ')) {
    if ([...word].length > width) return null;
    const next = line ? `${line} ${word}` : word;
    if ([...next].length <= width) line = next;
    else {
      out.push(line);
      line = word;
    }
  }
  if (line) out.push(line);
  return out.length <= lines ? out : null;
}

/** National ids never appear whole in messages: all but the last three characters are masked. */
export { mask } from '../../transforms/identifiers/problem.ts';
