import { describe, expect, it } from 'vitest';
import { Watermark } from '../../server/http/watermark.ts';

const at = (s: number) => new Date(Date.UTC(2024, 0, 1, 0, 0, s));

describe('Watermark', () => {
  it('reaches back by the overlap and reports each key once', () => {
    const w = new Watermark(at(100), 10_000);
    expect(w.from).toEqual(at(90));
    expect(w.fresh('a1', at(95))).toBe(true);
    expect(w.fresh('a1', at(95))).toBe(false);
    w.advance(at(120));
    expect(w.from).toEqual(at(110));
    // A row that committed late but is stamped inside the overlap is new; an old one is still known.
    expect(w.fresh('a2', at(112))).toBe(true);
    expect(w.remembered).toBe(1);
    expect(w.fresh('a1', at(95))).toBe(true);
  });

  it('keeps keys stamped in the same millisecond as the bound, and never moves back', () => {
    const w = new Watermark(at(100), 10_000);
    w.fresh('edge', at(100));
    w.advance(at(110));
    expect(w.fresh('edge', at(100))).toBe(false);
    w.advance(at(105));
    expect(w.from).toEqual(at(100));
    w.advance(at(111));
    expect(w.remembered).toBe(0);
  });
});
