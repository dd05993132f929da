import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { backfillRange, parseCliDate } from '../../cli/args.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** Usage errors are found while the command line is parsed, before any service is opened: no env needed. */
function hubflow(...args: string[]) {
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], {
    // A service URL nothing listens on: a command that got past its arguments would fail differently.
    env: { ...process.env, HUBFLOW_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', HUBFLOW_REDIS_URL: 'redis://127.0.0.1:1' },
    encoding: 'utf8',
    timeout: 30_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('usage errors: exit 2 with what is wrong, before anything is opened', () => {
  it.each([
    [['runs', 'show', 'abc'], "command-argument value 'abc' is invalid for argument 'run'. a whole number of at least 1."],
    [['tasks', 'clear', '0'], "command-argument value '0' is invalid for argument 'run'"],
    [['runs', 'list', '--limit', 'abc'], "option '--limit <n>' argument 'abc' is invalid. a whole number from 1 to 1000."],
    [['runs', 'list', '--limit', '0'], "option '--limit <n>' argument '0' is invalid"],
    [['dags', 'trigger', 'x', '--date', '2026-02-30'], "option '--date <date>' argument '2026-02-30' is invalid. no such day: 2026-02 has 28 days."],
    [['dags', 'test', 'x', '--date', 'yesterday'], "argument 'yesterday' is invalid. not a date (use ISO 8601"],
    [['dags', 'backfill', 'x', '--from', '2026-13-01', '--to', '2026-12-01'], "argument '2026-13-01' is invalid. no month 13"],
    [['dags', 'backfill', 'x', '--from', '2026-01-01'], "required option '--to <date>' not specified"],
    [['worker', '--concurrency', 'many'], "option '--concurrency <n>' argument 'many' is invalid"],
    [['reconcile', 'report', '--run', '1.5'], "option '--run <id>' argument '1.5' is invalid"],
    [['history', 'approve-deletes', '--tenant', 't', '--date', '2025-02-29', '--reason', 'r'], 'no such day: 2025-02 has 28 days.'],
    [['runs', 'lst'], "unknown command 'lst'"],
    [['runs', 'list', '--colour'], "unknown option '--colour'"],
    [['filings', 'validate', 'f', '--jurisdiction'], "option '--jurisdiction <code>' argument missing"],
  ])('hubflow %j', (args, message) => {
    const { status, stdout, stderr } = hubflow(...args);
    expect(stderr).toContain(message);
    expect(status).toBe(2);
    expect(stdout).toBe('');
  });

  it('--version prints the package version', () => {
    const { version } = JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')) as { version: string };
    expect(hubflow('--version')).toEqual({ status: 0, stdout: `${version}\n`, stderr: '' });
  });

  it('dags backfill --help states the range rule', () => {
    const { status, stdout } = hubflow('dags', 'backfill', '--help');
    expect(status).toBe(0);
    expect(stdout).toContain("A date without a time (2026-03-04) is that whole day in the DAG's time zone");
  });
});

describe('command-line dates', () => {
  it('refuse days that do not exist, accept leap days and offsets', () => {
    expect(() => parseCliDate('2026-02-29')).toThrow('2026-02 has 28 days');
    expect(parseCliDate('2028-02-29').at.toISOString()).toBe('2028-02-29T00:00:00.000Z');
    expect(() => parseCliDate('2026-04-31T00:00:00Z')).toThrow('2026-04 has 30 days');
    expect(() => parseCliDate('2026-04-01T24:00:00Z')).toThrow('no such time of day');
    expect(parseCliDate('2026-04-01T02:30').at.toISOString()).toBe('2026-04-01T02:30:00.000Z');
    expect(parseCliDate('2026-04-01T02:30:00+02:00').at.toISOString()).toBe('2026-04-01T00:30:00.000Z');
  });

  it("a backfill's date-only --to is the whole of that day in the DAG's zone", () => {
    // A 22:00 New York tick on 4 March is 03:00 UTC on the 5th: still the 4th's tick.
    const range = backfillRange(parseCliDate('2026-03-01'), parseCliDate('2026-03-04'), 'America/New_York');
    expect(range.from.toISOString()).toBe('2026-03-01T05:00:00.000Z');
    expect(range.to.toISOString()).toBe('2026-03-05T04:59:59.999Z');
    const exact = backfillRange(parseCliDate('2026-03-01T06:00:00Z'), parseCliDate('2026-03-04T05:59:00Z'));
    expect([exact.from.toISOString(), exact.to.toISOString()]).toEqual(['2026-03-01T06:00:00.000Z', '2026-03-04T05:59:00.000Z']);
  });
});
