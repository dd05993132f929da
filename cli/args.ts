import { Argument, InvalidArgumentError, type Command } from 'commander';
import { readFileSync } from 'node:fs';
import { fromLocal } from '../server/engine/timetable.ts';

/*
 * Argument checking for every command, done while the command line is parsed: a malformed
 * argument is a usage error (exit 2) before any service is opened.
 */

/** The exit code of every usage error: an unknown command or option, a malformed argument. */
export const USAGE_EXIT = 2;

/**
 * Makes every usage error of `program` and of the commands added to it afterwards exit with
 * USAGE_EXIT (Commander's own default is 1, which hubflow's commands use for failed outcomes).
 */
export function usageErrorsExit2(program: Command): Command {
  return program.exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : USAGE_EXIT));
}

export function packageVersion(): string {
  // From the sources (server/) or from the compiled copy (dist/server/), one folder deeper.
  const manifest = new URL(import.meta.url.endsWith('.ts') ? '../package.json' : '../../package.json', import.meta.url);
  const pkg = JSON.parse(readFileSync(manifest, 'utf8')) as { version: string };
  return pkg.version;
}

/** A whole number in [min, max], for options such as --limit. */
export function wholeNumber(min: number, max = Number.MAX_SAFE_INTEGER): (value: string) => number {
  return (value) => {
    const n = /^\s*\d+\s*$/.test(value) ? Number(value) : Number.NaN;
    if (!Number.isSafeInteger(n) || n < min || n > max) {
      throw new InvalidArgumentError(`a whole number${max === Number.MAX_SAFE_INTEGER ? ` of at least ${min}` : ` from ${min} to ${max}`}.`);
    }
    return n;
  };
}

/** The <run> argument: a run id, a whole number of at least 1. */
export function runIdArgument(description = 'run id'): Argument {
  return new Argument('<run>', description).argParser(wholeNumber(1));
}

const DATE_ONLY = /^(\d{4})-(\d{2})-(\d{2})$/;
const DATE_TIME = /^(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?$/i;

/**
 * A date as given on the command line: ISO 8601, a date (2026-03-29) or a date and time
 * (2026-03-29T02:30:00Z). Checked field by field, so an impossible date such as 2026-02-30 is
 * refused rather than rolled over into March as JavaScript's Date would. Dates and times
 * without an offset are UTC.
 */
export interface CliDate {
  /** The instant; a date alone is its UTC midnight. */
  at: Date;
  /** The calendar day, when only a date was given (the caller may read it in a DAG's zone). */
  day?: { year: number; month: number; day: number };
}

export function parseCliDate(value: string): CliDate {
  const hint = 'use ISO 8601, e.g. 2026-03-29 or 2026-03-29T02:30:00Z';
  const only = DATE_ONLY.exec(value);
  const full = only ? undefined : DATE_TIME.exec(value);
  const fields = (only ?? full)?.slice(1, 7).map((f) => (f === undefined ? 0 : Number(f)));
  if (!fields) throw new InvalidArgumentError(`not a date (${hint}).`);
  const [year, month, day, hour, minute, second] = fields as [number, number, number, number, number, number];
  const daysInMonth = new Date(Date.UTC(year, month, 0)).getUTCDate();
  if (month < 1 || month > 12) throw new InvalidArgumentError(`no month ${month} (${hint}).`);
  if (day < 1 || day > daysInMonth) throw new InvalidArgumentError(`no such day: ${year}-${pad(month)} has ${daysInMonth} days.`);
  if (hour > 23 || minute > 59 || second > 59) throw new InvalidArgumentError(`no such time of day (${hint}).`);
  if (only) return { at: new Date(Date.UTC(year, month - 1, day)), day: { year, month, day } };
  const at = new Date(full![7] ? value : `${value}Z`);
  if (Number.isNaN(at.getTime())) throw new InvalidArgumentError(`not a date (${hint}).`);
  return { at };
}

/** For options whose value is just an instant (--date). */
export function dateOption(value: string): Date {
  return parseCliDate(value).at;
}

/**
 * A backfill range by the rule `dags backfill --help` states: both ends are inclusive, and a
 * date without a time stands for the whole of that day in the DAG's time zone, so
 * `--to 2026-03-04` includes the tick of the 4th whatever its hour.
 */
export function backfillRange(from: CliDate, to: CliDate, timezone = 'UTC'): { from: Date; to: Date } {
  const startOf = (d: NonNullable<CliDate['day']>) => fromLocal({ ...d, hour: 0, minute: 0 }, timezone);
  return {
    from: from.day ? startOf(from.day) : from.at,
    to: to.day ? new Date(startOf({ ...to.day, day: to.day.day + 1 }).getTime() - 1) : to.at,
  };
}

function pad(n: number): string {
  return String(n).padStart(2, '0');
}

/** For options that name a calendar day (YYYY-MM-DD), kept as that text. */
export function dayOption(value: string): string {
  if (!parseCliDate(value).day) throw new InvalidArgumentError('a day as YYYY-MM-DD, without a time.');
  return value;
}
