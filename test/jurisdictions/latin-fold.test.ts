import { describe, expect, it } from 'vitest';
import { fold as craFold } from '../../jurisdictions/ca-t4/charset.ts';
import { CHARSET_D, fold as fpsFold } from '../../jurisdictions/gb-rti-fps/text.ts';
import { foldUpper, PERSON_NAME } from '../../jurisdictions/us-efw2/text.ts';
import { LATIN_LETTERS, TYPOGRAPHIC_PUNCTUATION } from '../../transforms/latin.ts';

describe('Latin names in every filing format', () => {
  const names = ['Søren Ødegård', 'Łukasz Đurić', 'Þórður Ðorláksson', 'Æbeltoft Œuvray', 'Straßer', 'Ŋgũgĩ Ħal', 'Ŀlorenz ŧ', 'O\u2019Brien\u2013Smith'];

  it('fold the letters decomposition leaves whole, and typographic punctuation, the same way in the FPS, the EFW2 and the T4 (which keeps French accents)', () => {
    for (const name of names) {
      const fps = fpsFold(name);
      expect(fps, name).toMatch(CHARSET_D);
      expect(foldUpper(name), name).toMatch(PERSON_NAME);
      expect(foldUpper(name), name).toBe(fps.toUpperCase());
      expect(craFold(name, 'name'), name).toEqual({ text: fps, rejected: [] });
    }
    expect(fpsFold('Søren Ødegård')).toBe('Soren Odegard');
    expect(fpsFold('O\u2019Brien\u2013Smith')).toBe("O'Brien-Smith");
    expect(craFold('Françoise Ŀlorenç', 'name').text).toBe('Françoise Llorenç');
  });

  it('leave no letter of the shared table unfolded', () => {
    for (const c of [...Object.keys(LATIN_LETTERS), ...Object.keys(TYPOGRAPHIC_PUNCTUATION).filter((p) => p.trim())]) {
      expect(fpsFold(`a${c}b`), JSON.stringify(c)).toMatch(/^[A-Za-z' -]+$/);
    }
  });
});
