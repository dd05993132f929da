import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDags } from '../../server/engine/loader.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.join(root, 'test/fixtures/dags');

let rt: TestRuntime;
beforeAll(async () => {
  rt = await testRuntime(await loadDags(fixtures));
});
afterAll(async () => {
  await rt?.close();
});

/** Runs the real `hubflow` command against this file's store and queues. */
function hubflow(...args: string[]) {
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], {
    env: { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: fixtures },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hubflow dags test', () => {
  it('runs one run to completion and exits 0 when it succeeds', () => {
    const { status, stdout } = hubflow('dags', 'test', 'cli-check', '--date', '2026-02-01T06:00:00Z');
    expect(status).toBe(0);
    expect(stdout).toMatch(/run \d+ of cli-check at 2026-02-01T06:00:00.000Z: success/);
    expect(stdout).toMatch(/check\s+success\s+1/);
  });

  it('exits 1 and shows the error when the run fails', () => {
    const { status, stdout } = hubflow('dags', 'test', 'cli-check', '--date', '2026-02-02T06:00:00Z', '--conf', '{"fail":true}');
    expect(status).toBe(1);
    expect(stdout).toMatch(/: failed/);
    expect(stdout).toContain('check failed: 3 records without tenant_id');
  });

  it('says what is wrong with a bad --conf, exit 2', () => {
    const { status, stderr } = hubflow('dags', 'test', 'cli-check', '--conf', '{fail');
    expect(status).toBe(2);
    expect(stderr).toContain('--conf: not JSON');
  });
});

describe('hubflow dags backfill', () => {
  it("runs every interval in the range, oldest first, one at a time; --to D includes D's tick", async () => {
    const { status, stdout } = hubflow('dags', 'backfill', 'cli-check', '--from', '2026-03-01', '--to', '2026-03-04', '--json');
    expect(status).toBe(0);
    const runs = JSON.parse(stdout) as { logical_date: string; state: string }[];
    expect(runs.map((r) => [r.logical_date, r.state])).toEqual([
      ['2026-03-01T06:00:00.000Z', 'success'],
      ['2026-03-02T06:00:00.000Z', 'success'],
      ['2026-03-03T06:00:00.000Z', 'success'],
      ['2026-03-04T06:00:00.000Z', 'success'],
    ]);
    // maxActiveRuns 1: each run started after the previous one ended.
    const rows = await rt.db.selectFrom('dag_runs').select(['started_at', 'ended_at']).where('run_type', '=', 'backfill').orderBy('logical_date').execute();
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.started_at!.getTime()).toBeGreaterThanOrEqual(rows[i - 1]!.ended_at!.getTime());
  });
});

describe('hubflow runs and dags listings', () => {
  it('list runs and one run as JSON', () => {
    const list = hubflow('runs', 'list', '--dag', 'cli-check', '--json');
    expect(list.status).toBe(0);
    const runs = JSON.parse(list.stdout) as { id: number; dag_id: string }[];
    expect(runs.length).toBeGreaterThanOrEqual(2);
    const show = hubflow('runs', 'show', String(runs[0]!.id), '--json');
    expect(JSON.parse(show.stdout)).toMatchObject({ id: runs[0]!.id, dag_id: 'cli-check', tasks: expect.any(Array) });
  });

  it('pause stops the scheduler creating runs for the DAG', async () => {
    expect(hubflow('dags', 'pause', 'cli-check').status).toBe(0);
    const row = await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'cli-check').executeTakeFirstOrThrow();
    expect(row.is_paused).toBe(true);
    expect(hubflow('dags', 'unpause', 'cli-check').status).toBe(0);
  });

  it('names an unknown DAG', () => {
    const { status, stderr } = hubflow('dags', 'show', 'nope');
    expect(status).toBe(2);
    expect(stderr).toContain("no DAG 'nope' is loaded");
  });
});
