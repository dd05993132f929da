import type { FilingPeriod } from '../types.ts';

/**
 * The PAYE calendar: the tax year runs 6 April to 5 April and tax month n runs from the 6th of
 * one calendar month to the 5th of the next (month 1 = 6 April - 5 May). An FPS is due on or
 * before payday, so each monthly period's deadline is the end of its payday, UK time.
 *
 * Payday is the last weekday of the calendar month the period starts in (the hub pays then).
 * That day is always between the 24th and the last of the month, so every calendar month's
 * payday falls in exactly one tax month: October's in month 7 (6 Oct - 5 Nov), November's in
 * month 8, December's in month 9.
 */

const DAY_MS = 86_400_000;

const pad2 = (n: number) => String(n).padStart(2, '0');
const iso = (y: number, m: number, d: number) => `${y}-${pad2(m)}-${pad2(d)}`;

function parts(date: string): [number, number, number] {
  return [Number(date.slice(0, 4)), Number(date.slice(5, 7)), Number(date.slice(8, 10))];
}

/** Days since 1970-01-01 of a YYYY-MM-DD date. */
export function dayNumber(date: string): number {
  const [y, m, d] = parts(date);
  return Date.UTC(y, m - 1, d) / DAY_MS;
}

export function isoDay(day: number): string {
  return new Date(day * DAY_MS).toISOString().slice(0, 10);
}

/** True for a real calendar date written YYYY-MM-DD. */
export function isIsoDate(value: string): boolean {
  if (!/^\d{4}-\d{2}-\d{2}$/.test(value)) return false;
  const [y, m, d] = parts(value);
  const t = new Date(Date.UTC(y, m - 1, d));
  return t.getUTCFullYear() === y && t.getUTCMonth() === m - 1 && t.getUTCDate() === d;
}

/** The calendar year in which the tax year holding `date` starts. */
export function taxYearStartYear(date: string): number {
  const [y, m, d] = parts(date);
  return m > 4 || (m === 4 && d >= 6) ? y : y - 1;
}

export function taxYearId(startYear: number): string {
  return `${startYear}-${pad2((startYear + 1) % 100)}`;
}

/** Tax month (1-12) a date falls in. */
export function taxMonthOf(date: string): number {
  const [, m, d] = parts(date);
  const month = d >= 6 ? m : m - 1;
  return ((month - 4 + 12) % 12) + 1;
}

function lastWeekday(y: number, m: number): string {
  let day = Date.UTC(y, m, 0) / DAY_MS;
  // 1970-01-01 was a Thursday: (day + 4) % 7 gives 0 = Sunday ... 6 = Saturday.
  while ((day + 4) % 7 === 0 || (day + 4) % 7 === 6) day--;
  return isoDay(day);
}

function lastSunday(y: number, m: number): number {
  let day = Date.UTC(y, m, 0) / DAY_MS;
  while ((day + 4) % 7 !== 0) day--;
  return day;
}

/**
 * 23:59:59.999 UK time on `date`, as an instant. British Summer Time runs from the last Sunday of
 * March to the last Sunday of October (Summer Time Order 2002); computed here so the deadline does
 * not depend on the time-zone data of the machine.
 */
export function endOfUkDay(date: string): Date {
  const [y, m, d] = parts(date);
  const day = dayNumber(date);
  const bst = day >= lastSunday(y, 3) && day < lastSunday(y, 10);
  return new Date(Date.UTC(y, m - 1, d, 23, 59, 59, 999) - (bst ? 3_600_000 : 0));
}

/** Tax month `month` (1-12) of the tax year starting in April of `startYear`. */
export function monthlyPeriod(startYear: number, month: number): FilingPeriod {
  const calendarMonth = ((month + 2) % 12) + 1;
  const year = month <= 9 ? startYear : startYear + 1;
  const nextMonth = (calendarMonth % 12) + 1;
  const nextYear = calendarMonth === 12 ? year + 1 : year;
  const payDate = lastWeekday(year, calendarMonth);
  return {
    id: `${taxYearId(startYear)}-M${pad2(month)}`,
    start: iso(year, calendarMonth, 6),
    end: iso(nextYear, nextMonth, 5),
    payDate,
    deadline: endOfUkDay(payDate),
    taxYear: taxYearId(startYear),
    yearStart: iso(startYear, 4, 6),
  };
}

/** Every tax month whose last day falls within [from, to), in order. */
export function monthlyPeriods(from: Date, to: Date): FilingPeriod[] {
  const periods: FilingPeriod[] = [];
  const first = taxYearStartYear(from.toISOString().slice(0, 10));
  const last = taxYearStartYear(to.toISOString().slice(0, 10));
  for (let y = first; y <= last; y++) {
    for (let month = 1; month <= 12; month++) {
      const p = monthlyPeriod(y, month);
      const endsAt = dayNumber(p.end) * DAY_MS;
      if (endsAt >= from.getTime() && endsAt < to.getTime()) periods.push(p);
    }
  }
  return periods;
}
