import type { FilingPeriod } from '../types.ts';

/**
 * The T4 calendar: one return per calendar year, due the last day of February of the next
 * year. When that day is a Saturday or Sunday CRA accepts the return on the next business day
 * (CRA "Due dates" rule). No public holiday falls on the days concerned: Family Day is a
 * provincial holiday, not one CRA's due-date rule recognises.
 */

const DAY_MS = 86_400_000;

function iso(ms: number): string {
  return new Date(ms).toISOString().slice(0, 10);
}

/** The day the T4 return for `year` is due: last day of February, moved off a weekend. */
export function dueDate(year: number): string {
  let ms = Date.UTC(year + 1, 2, 0); // day 0 of March: the last day of February
  const weekday = new Date(ms).getUTCDay();
  if (weekday === 6) ms += 2 * DAY_MS;
  else if (weekday === 0) ms += DAY_MS;
  return iso(ms);
}

/**
 * The instant the return is late: the end of the due day in Ottawa. Late February and the first
 * days of March are always before daylight saving starts, so Ottawa is at UTC-5.
 */
export function deadline(year: number): Date {
  const [y, m, d] = dueDate(year).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1, 5) - 1);
}

export function periodOf(year: number): FilingPeriod {
  return {
    id: String(year),
    start: `${year}-01-01`,
    end: `${year}-12-31`,
    payDate: null,
    deadline: deadline(year),
    taxYear: String(year),
    yearStart: `${year}-01-01`,
  };
}

/** Every year whose last day (taken at 00:00 UTC) falls within [from, to). */
export function periods(from: Date, to: Date): FilingPeriod[] {
  const out: FilingPeriod[] = [];
  for (let year = from.getUTCFullYear() - 1; year <= to.getUTCFullYear(); year++) {
    const end = Date.UTC(year, 11, 31);
    if (end >= from.getTime() && end < to.getTime()) out.push(periodOf(year));
  }
  return out;
}
