import { CronTimetable } from '../../server/engine/timetable.ts';

export const LONDON = 'Europe/London';
export const NEW_YORK = 'America/New_York';

export function tt(cron: string, timezone: string): CronTimetable {
  return new CronTimetable({ cron, timezone });
}

export function ticks(t: CronTimetable, from: string, to: string): string[] {
  return t.between(new Date(from), new Date(to)).map((d) => d.toISOString());
}
