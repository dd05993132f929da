import { describe, expect, it } from 'vitest';
import { canonicalEncoding, decodeCanonical, hashOfEncoding, rowHash } from '../../transforms/row-hash.ts';

describe('the canonical encoding', () => {
  it("writes values as COPY's text format writes them, and reads them back unchanged", () => {
    const values = ['plain', null, '', 'tab\there', 'line\nbreak\r', 'back\\slash \\N', '\b\f\v', 'ünïcødé'];
    const line = canonicalEncoding(values);
    expect(line).toBe('plain\t\\N\t\ttab\\there\tline\\nbreak\\r\tback\\\\slash \\\\N\t\\b\\f\\v\tünïcødé');
    expect(decodeCanonical(line)).toEqual(values);
  });

  it('tells null from the text \\N and from the empty string, so no two rows share a hash', () => {
    expect(new Set([rowHash([null]), rowHash(['\\N']), rowHash([''])]).size).toBe(3);
    expect(hashOfEncoding(canonicalEncoding(['a', null]))).toBe(rowHash(['a', null]));
  });

  it('refuses a missing value rather than encode it as something', () => {
    const sparse = ['a', 'b'];
    sparse.length = 3;
    expect(() => canonicalEncoding(sparse)).toThrow(/value 2 is missing/);
  });
});
