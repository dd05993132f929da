import { describe, expect, it } from 'vitest';
import { toStorableJson } from '../../server/engine/storable.ts';

describe('what the store can keep', () => {
  it('counts nesting by structure, not by brackets inside strings', () => {
    const text = `"quoted \\" [[[[ {{{{ ${'['.repeat(5_000)}`;
    expect(toStorableJson({ text, list: [[1], [2]] }, 'result', 3)).toEqual({ json: JSON.stringify({ text, list: [[1], [2]] }) });
    expect(toStorableJson({ a: { b: { c: {} } } }, 'result', 3)).toEqual({ problem: 'result.a.b.c nests deeper than 3 levels' });
  });

  it('tells a backslash before u0000 in the text from the character U+0000', () => {
    expect(toStorableJson({ path: 'C:\\u0000' }, 'conf', 8)).toEqual({ json: '{"path":"C:\\\\u0000"}' });
    expect(toStorableJson({ path: 'C:\u0000' }, 'conf', 8)).toEqual({ problem: 'conf.path holds the character U+0000, which the store cannot keep' });
  });

  it('keeps paired surrogates and refuses a lone one of either half', () => {
    expect(toStorableJson(['🙂'], 'result', 8)).toEqual({ json: '["🙂"]' });
    expect(toStorableJson(['\ud83d'], 'result', 8)).toEqual({ problem: 'result[0] holds a lone surrogate (U+D83D), which the store cannot keep' });
    expect(toStorableJson(['\ude42x'], 'result', 8)).toEqual({ problem: 'result[0] holds a lone surrogate (U+DE42), which the store cannot keep' });
  });
});
