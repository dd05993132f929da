import type { FilingPeriod } from '../types.ts';

/**
 * EFW2 is annual: one period per calendar (tax) year, due at SSA by January 31 of the next
 * year. A deadline on a Saturday or Sunday moves to the Monday (IRC §7503). No federal holiday
 * can fall on January 31 to February 2 (New Year's Day, the third Monday of January and of
 * February are the nearest), so the weekend rule is the whole holiday rule for this date.
 */

const iso = (y: number, m: number, d: number) => new Date(Date.UTC(y, m - 1, d)).toISOString().slice(0, 10);

/** The due date (YYYY-MM-DD) of the file for a tax year. */
export function dueDate(taxYear: number): string {
  const due = new Date(Date.UTC(taxYear + 1, 0, 31));
  const weekday = due.getUTCDay();
  if (weekday === 6) due.setUTCDate(due.getUTCDate() + 2);
  if (weekday === 0) due.setUTCDate(due.getUTCDate() + 1);
  return due.toISOString().slice(0, 10);
}

/**
 * The instant of the deadline: the end of the due date in US Eastern time, where SSA sits.
 * Late January / early February is always standard time (UTC-5).
 */
export function deadline(taxYear: number): Date {
  const [y, m, d] = dueDate(taxYear).split('-').map(Number) as [number, number, number];
  return new Date(Date.UTC(y, m - 1, d + 1, 5, 0, 0) - 1);
}

export function period(taxYear: number): FilingPeriod {
  return {
    id: String(taxYear),
    start: iso(taxYear, 1, 1),
    end: iso(taxYear, 12, 31),
    payDate: null,
    deadline: deadline(taxYear),
    taxYear: String(taxYear),
    yearStart: iso(taxYear, 1, 1),
  };
}

/** Every tax year whose last day (Dec 31, 00:00 UTC) falls within [from, to), in order. */
export function periods(from: Date, to: Date): FilingPeriod[] {
  const out: FilingPeriod[] = [];
  for (let y = from.getUTCFullYear() - 1; y <= to.getUTCFullYear(); y++) {
    const end = Date.UTC(y, 11, 31);
    if (end >= from.getTime() && end < to.getTime()) out.push(period(y));
  }
  return out;
}
