import { describe, expect, it } from 'vitest';
import { bucketOf, emptyHistogram, histogramOf, LATENCY_BOUNDS, mergeInto, quantile, spanLatency } from '../../core/latency-histogram.ts';

describe('latency histograms', () => {
  it('put each latency in the first bucket whose bound holds it, past 7 days in the last', () => {
    expect([0, 1, 1.001, 300, 301, 604_800, 604_801].map(bucketOf)).toEqual([0, 0, 1, 11, 12, 32, 33]);
    expect(LATENCY_BOUNDS).toContain(300);
    expect(LATENCY_BOUNDS).toContain(21_600);
    const h = histogramOf([-5, 10]);
    // A hub clock ahead of the warehouse's reads as no latency, not a negative one.
    expect([h.minSeconds, h.maxSeconds, h.sumSeconds, h.buckets[0]]).toEqual([0, 10, 10, 1]);
  });

  it('read one value exactly, and any other quantile within its bucket', () => {
    expect(quantile(histogramOf([123.4]), 0.5)).toBe(123.4);
    expect(quantile(histogramOf([123.4]), 0.99)).toBe(123.4);
    const values = Array.from({ length: 1000 }, (_, i) => 60 + i * 10); // 60 s .. 10 050 s
    const h = histogramOf(values);
    for (const q of [0.5, 0.9, 0.99]) {
      const exact = values[Math.ceil(q * values.length) - 1]!;
      const got = quantile(h, q)!;
      const b = bucketOf(exact);
      expect(got).toBeGreaterThanOrEqual(b ? LATENCY_BOUNDS[b - 1]! : 0);
      expect(got).toBeLessThanOrEqual(LATENCY_BOUNDS[b]!);
    }
    expect(quantile(emptyHistogram(), 0.5)).toBeNull();
  });

  it('merge by adding counts, as a window of loads does', () => {
    const merged = [histogramOf([5, 50]), histogramOf([500]), histogramOf([800_000])].reduce(mergeInto, emptyHistogram());
    expect(merged).toEqual(histogramOf([5, 50, 500, 800_000]));
    // The open last bucket ends at the largest latency seen.
    expect(quantile(merged, 1)).toBe(800_000);
  });

  it('make a filing one span from its data cut to its delivery', () => {
    const r = spanLatency('gb-rti-fps', 'acme', '2026-01-02T06:00:00.000000Z', '2026-01-02T06:02:30.500Z');
    expect(r).toMatchObject({ kind: 'filing', source: 'data_cut', histogram: { count: 1, sumSeconds: 150.5, minSeconds: 150.5, maxSeconds: 150.5 } });
  });
});
