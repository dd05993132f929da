import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDags } from '../../server/engine/loader.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

/*
 * stdout of every `--json` command is exactly one JSON document, whatever is logged: here the
 * log level is debug and the DAG folder holds a file that does not parse, so every command
 * has something to say on stderr.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
let rt: TestRuntime;
let dir: string;
let env: Record<string, string>;

beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'hubflow-json-'));
  const dags = path.join(dir, 'dags');
  rmSync(dags, { recursive: true, force: true });
  spawnSync('mkdir', ['-p', dags]);
  copyFileSync(path.join(root, 'test/fixtures/dags/cli-check.ts'), path.join(dags, 'cli-check.ts'));
  // A task that prints as task code does: a log line, never part of the command's output.
  writeFileSync(
    path.join(dags, 'chatty.ts'),
    `import { defineDag, task } from 'hubflow';\nexport default defineDag({ id: 'chatty', tasks: { say: task({ run: () => { console.log('hello from a task'); return 1; } }) } });\n`,
  );
  writeFileSync(path.join(dags, 'broken.ts'), `import { defineDag } from 'hubflow';\nexport default defineDag({ id: 'broken', tasks: {`);
  rt = await testRuntime(await loadDags(path.join(root, 'test/fixtures/dags')));
  env = {
    ...rt.env,
    HUBFLOW_DAGS_DIR: dags,
    HUBFLOW_LOG_LEVEL: 'debug',
    HUBFLOW_HOME: path.join(dir, 'home'),
    HUBFLOW_OUTBOX_DIR: path.join(dir, 'outbox'),
    HUBFLOW_HUB_SCHEMA: `${rt.env.HUBFLOW_DB_SCHEMA}_hub`,
    HUBFLOW_WAREHOUSE_SCHEMA: `${rt.env.HUBFLOW_DB_SCHEMA}_wh`,
  };
});

afterAll(async () => {
  if (rt) {
    await sql`drop schema if exists ${sql.id(env.HUBFLOW_HUB_SCHEMA!)} cascade`.execute(rt.db);
    await sql`drop schema if exists ${sql.id(env.HUBFLOW_WAREHOUSE_SCHEMA!)} cascade`.execute(rt.db);
    await rt.close();
  }
  rmSync(dir, { recursive: true, force: true });
});

function hubflow(...args: string[]) {
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], {
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a --json command: its stdout parses as one document, and its logs (if it loads the DAGs) are on stderr. */
function json<T = unknown>(expectedStatus: number, ...args: string[]): T {
  const { status, stdout, stderr } = hubflow(...args, '--json');
  expect({ args, status, stderr: status === expectedStatus ? '' : stderr }).toEqual({ args, status: expectedStatus, stderr: '' });
  // Only the filings commands read no DAG folder and open no service, so they have nothing to log.
  if (args[0] !== 'filings') expect(stderr).toMatch(/broken\.ts/);
  return JSON.parse(stdout) as T;
}

describe('--json: one JSON document on stdout, logs on stderr', () => {
  it('dags list, show, trigger, test, backfill', () => {
    const listed = json<{ dags: { dag: string }[]; errors: { file: string; field: string; error: string }[] }>(1, 'dags', 'list');
    expect(listed.dags.map((d) => d.dag).sort()).toEqual(['chatty', 'cli-check']);
    expect(listed.errors).toEqual([expect.objectContaining({ field: '(syntax)', error: 'line 2, column 50: Expected identifier but found end of file' })]);
    expect(json<{ dag: string }>(0, 'dags', 'show', 'cli-check').dag).toBe('cli-check');
    expect(json<{ state: string }>(0, 'dags', 'trigger', 'cli-check', '--date', '2026-01-05T06:00:00Z').state).toBe('queued');
    const tested = hubflow('dags', 'test', 'chatty', '--json');
    expect(tested.status).toBe(0);
    expect(JSON.parse(tested.stdout)).toMatchObject({ dag_id: 'chatty', state: 'success' });
    expect(tested.stderr).toContain('hello from a task');
    expect(json<unknown[]>(0, 'dags', 'backfill', 'cli-check', '--from', '2026-01-07', '--to', '2026-01-07')).toHaveLength(1);
    expect(json<unknown[]>(0, 'dags', 'backfill', 'cli-check', '--from', '2026-01-07', '--to', '2026-01-07')).toEqual([]);
  }, 180_000);

  it('runs list, runs show, tasks clear', () => {
    const runs = json<{ id: number }[]>(0, 'runs', 'list', '--dag', 'cli-check');
    expect(runs.length).toBeGreaterThanOrEqual(2);
    expect(json<{ id: number }>(0, 'runs', 'show', String(runs[0]!.id)).id).toBe(runs[0]!.id);
    expect(json<{ cleared: string[] }>(0, 'tasks', 'clear', String(runs[0]!.id))).toEqual({ run: runs[0]!.id, cleared: [] });
  }, 180_000);

  it('windows, hub, reconcile, filings', () => {
    expect(json<{ collisions: unknown[] }>(1, 'windows', 'check').collisions).toEqual([]);
    expect(json<{ resources: unknown[] }>(0, 'windows', 'show').resources).toEqual([]);
    expect(json<{ rows: Record<string, number> }>(0, 'hub', 'seed', '--tenants', '1', '--workers', '5').rows.workers).toBe(5);
    expect(json<{ day: string }>(0, 'hub', 'mutate', '--at', '2026-01-08')).toMatchObject({ day: '2026-01-08' });
    expect(json<unknown[]>(0, 'hub', 'stats').length).toBeGreaterThan(0);
    expect(json<unknown[]>(0, 'reconcile', 'report')).toEqual([]);
    expect(json<{ filings: unknown[] }>(0, 'filings', 'list').filings).toEqual([]);
    const file = path.join(dir, 'not-a-filing.xml');
    writeFileSync(file, 'not xml');
    expect(json<{ valid: boolean }>(1, 'filings', 'validate', file, '--jurisdiction', 'gb-rti-fps').valid).toBe(false);
  }, 180_000);
});
