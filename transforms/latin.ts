/**
 * Latin text brought to ASCII the same way for every filing: the letters Unicode decomposition
 * leaves whole take their usual transliteration, and typographic punctuation its plain twin.
 * (Accents are dropped by decomposition; each jurisdiction decides what it then accepts.)
 */

/** Latin letters that NFD/NFKD do not reduce to an ASCII base letter. */
export const LATIN_LETTERS: Readonly<Record<string, string>> = {
  ß: 'ss',
  ẞ: 'SS',
  æ: 'ae',
  Æ: 'Ae',
  œ: 'oe',
  Œ: 'Oe',
  ø: 'o',
  Ø: 'O',
  ł: 'l',
  Ł: 'L',
  đ: 'd',
  Đ: 'D',
  ð: 'd',
  Ð: 'D',
  þ: 'th',
  Þ: 'Th',
  ı: 'i',
  ħ: 'h',
  Ħ: 'H',
  ŀ: 'l',
  Ŀ: 'L',
  ŋ: 'n',
  Ŋ: 'N',
  ĸ: 'k',
  ŧ: 't',
  Ŧ: 'T',
};

/** Typographic apostrophes, dashes and spaces the hub may hold, with their ASCII twins. */
export const TYPOGRAPHIC_PUNCTUATION: Readonly<Record<string, string>> = {
  '\u2018': "'",
  '\u2019': "'",
  '\u02bc': "'",
  '\u00b4': "'",
  '\u2010': '-',
  '\u2011': '-',
  '\u2012': '-',
  '\u2013': '-',
  '\u2014': '-',
  '\u00a0': ' ',
};

/** A global pattern matching any key of `table`, for `replace`. */
export const anyOf = (table: Readonly<Record<string, string>>): RegExp => new RegExp(`[${Object.keys(table).join('')}]`, 'g');
