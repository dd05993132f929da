import { PermanentError } from '../../core/errors.ts';
import type { FilingPeriod, Jurisdiction } from '../../jurisdictions/types.ts';

/**
 * The filing calendar as the pipeline reads it: when a period can be filed, when it is due,
 * and the one instant a filing states as its creation time.
 */

const DAY_MS = 86_400_000;
const startOfDay = (date: string) => new Date(`${date}T00:00:00Z`);

/**
 * From when a period can be filed. A period with a pay date (FPS: due on or before payday, so
 * inside the period) opens on that day, once the payroll it reports has been paid; an annual
 * return opens the day after its period ends, once the year is complete.
 */
export function opensAt(period: FilingPeriod): Date {
  return period.payDate ? startOfDay(period.payDate) : new Date(startOfDay(period.end).getTime() + DAY_MS);
}

/** Open for filing and not yet past its deadline at `at`. */
export function isDue(period: FilingPeriod, at: Date): boolean {
  return opensAt(period).getTime() <= at.getTime() && at.getTime() <= period.deadline.getTime();
}

/**
 * The creation time a filing states. Derived from the period, never from the clock, so a
 * re-run on the same hub data writes the same bytes: the instant the period opens for filing.
 */
export function generatedAtOf(period: FilingPeriod): Date {
  return opensAt(period);
}

/**
 * Periods whose filing window is open, or closed at most `lookbackDays` ago, at `at`: the
 * calendar lists periods by end date, and an FPS ends a few days after its deadline while an
 * annual return ends weeks before it, so the search reaches well past both sides.
 */
export function periodsAround(j: Jurisdiction, at: Date, lookbackDays = 0): FilingPeriod[] {
  const from = new Date(at.getTime() - (400 + lookbackDays) * DAY_MS);
  const to = new Date(at.getTime() + 60 * DAY_MS);
  return j.periods(from, to).filter((p) => opensAt(p).getTime() <= at.getTime() && p.deadline.getTime() >= at.getTime() - lookbackDays * DAY_MS);
}

const calendars = new Map<string, Map<string, FilingPeriod>>();

/** A period by its id, from the jurisdiction's own calendar (1990-2099), or null. */
export function findPeriod(j: Jurisdiction, id: string): FilingPeriod | null {
  let byId = calendars.get(j.code);
  if (!byId) {
    byId = new Map(j.periods(new Date('1990-01-01T00:00:00Z'), new Date('2100-01-01T00:00:00Z')).map((p) => [p.id, p]));
    calendars.set(j.code, byId);
  }
  return byId.get(id) ?? null;
}

export function periodOrFail(j: Jurisdiction, id: string): FilingPeriod {
  const found = findPeriod(j, id);
  if (!found) throw new PermanentError(`${j.code} has no period '${id}' in its calendar`);
  return found;
}
