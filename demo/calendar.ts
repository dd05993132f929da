/**
 * Dates as day numbers (days since 1970-01-01, UTC) and their text forms. Seeding writes
 * millions of dates; formatting them by hand is several times faster than Date#toISOString.
 */

export const DAY_SECONDS = 86_400;

/** The demo hub's "today": seeded data is as of this instant, so no timestamp depends on the clock. */
export const HUB_EPOCH = new Date('2026-01-01T00:00:00Z');
export const EPOCH_DAY = dayNumber(2026, 1, 1);

export function dayNumber(year: number, month: number, day: number): number {
  return Date.UTC(year, month - 1, day) / (DAY_SECONDS * 1000);
}

/** Howard Hinnant's civil_from_days. */
export function civil(day: number): { year: number; month: number; day: number } {
  const z = day + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const month = mp < 10 ? mp + 3 : mp - 9;
  return { year: yoe + era * 400 + (month <= 2 ? 1 : 0), month, day: doy - Math.floor((153 * mp + 2) / 5) + 1 };
}

const pad2 = (n: number) => (n < 10 ? `0${n}` : `${n}`);

/** 'YYYY-MM-DD'. */
export function isoDate(day: number): string {
  const c = civil(day);
  return `${c.year}-${pad2(c.month)}-${pad2(c.day)}`;
}

/** 'YYYY-MM-DD HH:MM:SS+00' from seconds since 1970, as PostgreSQL reads a timestamptz. */
export function isoTimestamp(seconds: number): string {
  const day = Math.floor(seconds / DAY_SECONDS);
  const s = seconds - day * DAY_SECONDS;
  return `${isoDate(day)} ${pad2(Math.floor(s / 3600))}:${pad2(Math.floor(s / 60) % 60)}:${pad2(s % 60)}+00`;
}

export function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

/** Monday = 0 ... Sunday = 6. */
export function weekday(day: number): number {
  return (((day + 3) % 7) + 7) % 7;
}
