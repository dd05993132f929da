import { describe, expect, it } from 'vitest';
import { jurisdiction } from '../../jurisdictions/index.ts';
import { fromCopyText } from '../../transforms/copy-text.ts';
import { minorUnits } from '../../tasks/filings/money.ts';
import { findPeriod, generatedAtOf, isDue, opensAt } from '../../tasks/filings/period.ts';

const fps = jurisdiction('gb-rti-fps');
const efw2 = jurisdiction('us-efw2');
const t4 = jurisdiction('ca-t4');

describe('filing calendars as the cycle reads them', () => {
  it('gives every period its tax year start, so year-to-date figures count from the right day', () => {
    expect(findPeriod(fps, '2025-26-M09')).toMatchObject({ start: '2025-12-06', end: '2026-01-05', yearStart: '2025-04-06', payDate: '2025-12-31' });
    expect(findPeriod(fps, '2025-26-M12')).toMatchObject({ end: '2026-04-05', yearStart: '2025-04-06' });
    expect(findPeriod(efw2, '2025')).toMatchObject({ yearStart: '2025-01-01', end: '2025-12-31' });
    expect(findPeriod(t4, '2025')).toMatchObject({ yearStart: '2025-01-01' });
    expect(findPeriod(fps, '2025-26-M13')).toBeNull();
  });

  it('opens an FPS on its payday (due by the end of it) and an annual return once the year is over', () => {
    const m09 = findPeriod(fps, '2025-26-M09')!;
    expect(opensAt(m09).toISOString()).toBe('2025-12-31T00:00:00.000Z');
    expect(isDue(m09, new Date('2025-12-30T23:00:00Z'))).toBe(false);
    expect(isDue(m09, new Date('2025-12-31T06:00:00Z'))).toBe(true);
    // Deadline: 23:59:59.999 London time on payday.
    expect(isDue(m09, new Date('2026-01-01T00:00:00Z'))).toBe(false);

    const w2 = findPeriod(efw2, '2025')!;
    expect(isDue(w2, new Date('2025-12-31T12:00:00Z'))).toBe(false);
    expect(isDue(w2, new Date('2026-01-15T06:00:00Z'))).toBe(true);
    expect(isDue(w2, new Date('2026-02-03T06:00:00Z'))).toBe(false);
  });

  it('states a creation time derived from the period, never the clock', () => {
    expect(generatedAtOf(findPeriod(fps, '2025-26-M08')!).toISOString()).toBe('2025-11-28T00:00:00.000Z');
    expect(generatedAtOf(findPeriod(t4, '2025')!).toISOString()).toBe('2026-01-01T00:00:00.000Z');
  });
});

describe('hub values as filings read them', () => {
  it('turns decimal text into exact minor units, where float arithmetic would be a cent out', () => {
    expect(0.29 * 100).not.toBe(29);
    expect(minorUnits('0.29', 'x')).toBe(29);
    expect(minorUnits('1234567890.07', 'x')).toBe(123_456_789_007);
    expect(minorUnits('-0.5', 'x')).toBe(-50);
    expect(minorUnits('12', 'x')).toBe(1200);
    expect(() => minorUnits('1.234', 'gross')).toThrow(/gross: '1.234' is not an amount/);
    expect(() => minorUnits('1e3', 'gross')).toThrow(/not an amount/);
  });

  it("undoes COPY's text escapes, so a tab or newline inside a name survives", () => {
    expect(fromCopyText('O\\tBrien\\nLine\\\\2')).toBe('O\tBrien\nLine\\2');
  });
});
