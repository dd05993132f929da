/**
 * The one way a DAG author writes a length of time: a compact string of whole units, largest
 * first, each at most once: '30s', '2m', '1h30m', '1d12h', '250ms'; a deadline may also count
 * calendar months and years ('1mo18d17h'). Any other spelling (a number of ms, 'PT6H', '1.5h')
 * is refused with the field's name, so a typo never becomes a silent default.
 */
export type Duration = string;

/** A duration's calendar parts: a deadline adds them to a local date (a month is not a fixed length). */
export interface DurationParts {
  readonly text: string;
  readonly years: number;
  readonly months: number;
  readonly days: number;
  readonly hours: number;
  readonly minutes: number;
  readonly seconds: number;
  readonly milliseconds: number;
}

const UNITS = /^(?:(\d+)y)?(?:(\d+)mo)?(?:(\d+)w)?(?:(\d+)d)?(?:(\d+)h)?(?:(\d+)m(?![os]))?(?:(\d+)s)?(?:(\d+)ms)?$/;

export const DURATION_HINT = "a duration such as '30s', '2m', '1h30m', '1d12h' or '250ms'";

/** The parts of `value`, or a sentence saying why it is not a duration. */
export function parseDurationParts(value: unknown): DurationParts | string {
  if (typeof value !== 'string') return `expected ${DURATION_HINT}, got ${typeof value === 'number' ? `the number ${value}` : typeof value}`;
  const m = UNITS.exec(value);
  if (!m || value === '') return `'${value}' is not ${DURATION_HINT} (units y, mo, w, d, h, m, s, ms, largest first)`;
  const n = (i: number) => Number(m[i] ?? 0);
  return Object.freeze({
    text: value,
    years: n(1),
    months: n(2),
    days: n(3) * 7 + n(4),
    hours: n(5),
    minutes: n(6),
    seconds: n(7),
    milliseconds: n(8),
  });
}

/** `value` in ms, or a sentence saying why not: calendar units have no fixed length. */
export function durationMs(value: unknown): number | string {
  const parts = parseDurationParts(value);
  if (typeof parts === 'string') return parts;
  if (parts.years || parts.months) return `'${parts.text}': months and years have no fixed length; use days (d) or weeks (w)`;
  return ((parts.days * 24 + parts.hours) * 60 + parts.minutes) * 60_000 + parts.seconds * 1000 + parts.milliseconds;
}

/** ms as the same compact form ('1h30m', '250ms'), for listings and messages. */
export function formatDuration(ms: number): string {
  const d = Math.floor(ms / 86_400_000);
  const h = Math.floor((ms % 86_400_000) / 3_600_000);
  const m = Math.floor((ms % 3_600_000) / 60_000);
  const s = Math.floor((ms % 60_000) / 1000);
  const rest = ms % 1000;
  return [d && `${d}d`, h && `${h}h`, m && `${m}m`, s && `${s}s`, rest && `${rest}ms`].filter(Boolean).join('') || '0s';
}

/** A measured span in seconds, in that form: to the millisecond under a minute, in whole seconds past it (18h8m30s, not 18h8m29s973ms). */
export function formatSeconds(seconds: number): string {
  return formatDuration(seconds >= 60 ? Math.round(seconds) * 1000 : Math.round(seconds * 1000));
}

/** Options that took milliseconds before durations were written one way, with what replaced them. */
const RENAMED: Readonly<Record<string, string>> = {
  timeoutMs: "timeout, a duration such as '1h'",
  baseMs: "base, a duration such as '2s'",
  maxMs: "max, a duration such as '5m'",
  deferJitterMs: "deferJitter, a duration such as '1m'",
};

/** The problem to report for an option nobody declared: an old millisecond option says what replaced it. */
export function unknownOption(key: string | undefined): string {
  const now = key === undefined ? undefined : RENAMED[key];
  return now ? `unknown option: durations are written one way now; use ${now}` : 'unknown option';
}
