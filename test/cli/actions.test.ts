import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { loadDags } from '../../server/engine/loader.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.join(root, 'test/fixtures/dags');
const bin = path.join(root, 'bin/hubflow.js');

let rt: TestRuntime;
let worker: Executor;
beforeAll(async () => {
  rt = await testRuntime(await loadDags(fixtures));
  // The tasks run here; the commands only act on the store.
  worker = startWorker(rt);
});
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

function hubflow(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: fixtures },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

const letters = (runId: number) =>
  rt.db.selectFrom('dead_letters').select(['task_id', 'resolution', 'resolved_by']).where('run_id', '=', runId).orderBy('id').execute();

describe('operator actions on the command line', { timeout: 600_000 }, () => {
  it('triggers with --conf, lists the dead letter, marks the task success, and the letter is resolved by the CLI', async () => {
    const triggered = hubflow('dags', 'trigger', 'cli-check', '--date', '2025-07-01T06:00:00Z', '--conf', '{"fail":true}', '--json');
    expect(triggered.status, triggered.stderr).toBe(0);
    const run = JSON.parse(triggered.stdout) as { id: number; conf: unknown };
    expect(run.conf).toEqual({ fail: true });
    expect((await waitForRun(rt, run.id)).state).toBe('failed');

    const listed = hubflow('dead-letters', 'list', '--dag', 'cli-check', '--json');
    expect(listed.status, listed.stderr).toBe(0);
    const open = JSON.parse(listed.stdout) as { run_id: number; task_id: string; tries: number }[];
    expect(open).toEqual([expect.objectContaining({ run_id: run.id, task_id: 'check', tries: 1 })]);
    expect(hubflow('dead-letters', 'list', '--dag', 'cli-check').stdout).toMatch(/check failed: 3 records without tenant_id/);

    const marked = hubflow('tasks', 'mark', String(run.id), 'check', '--state', 'success');
    expect(marked.status, marked.stderr).toBe(0);
    expect(marked.stdout).toBe(`run ${run.id}: check marked success; run is success\n`);
    expect((await rt.db.selectFrom('dag_runs').select('state').where('id', '=', run.id).executeTakeFirstOrThrow()).state).toBe('success');
    expect(await letters(run.id)).toEqual([{ task_id: 'check', resolution: 'marked_success', resolved_by: expect.stringMatching(/^cli \(/) }]);
    expect(hubflow('dead-letters', 'list', '--dag', 'cli-check').stdout).toBe('no open dead letters\n');
  });

  it('replays the open letters of a DAG: the task runs again with a fresh try, and fails again here as its conf says', async () => {
    const run = await rt.engine.triggerRun('cli-check', { logicalDate: new Date('2025-07-02T06:00:00Z'), conf: { fail: true } });
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    const replayed = hubflow('dead-letters', 'replay', '--dag', 'cli-check', '--task', 'check');
    expect(replayed.status, replayed.stderr).toBe(0);
    expect(replayed.stdout).toMatch(new RegExp(`^replayed 1 dead letter\\(s\\): \\d+\\nrun ${run.id}: cleared check\\n$`));
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    const ti = await rt.db
      .selectFrom('task_instances')
      .select(['try_number', 'max_tries'])
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'check')
      .executeTakeFirstOrThrow();
    expect(ti).toEqual({ try_number: 2, max_tries: 2 });
    expect((await letters(run.id)).map((l) => l.resolution)).toEqual(['replayed', null]);

    // Marked success as a whole: the run ends success, its letters resolved.
    const marked = hubflow('runs', 'mark', String(run.id), '--state', 'success', '--json');
    expect(marked.status, marked.stderr).toBe(0);
    expect(JSON.parse(marked.stdout)).toEqual({ run: run.id, dag: 'cli-check', state: 'success', instances: 1 });
    expect(await taskStates(rt, run.id)).toEqual({ extract: 'success', check: 'success' });
  });

  it('clears one task without its downstream, and pauses and unpauses through the same functions', async () => {
    const run = await rt.engine.triggerRun('cli-check', { logicalDate: new Date('2025-07-03T06:00:00Z') });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const cleared = hubflow('tasks', 'clear', String(run.id), '--task', 'extract', '--no-downstream', '--json');
    expect(cleared.status, cleared.stderr).toBe(0);
    expect(JSON.parse(cleared.stdout)).toEqual({ run: run.id, cleared: ['extract'] });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    const tries = await rt.db.selectFrom('task_instances').select(['task_id', 'try_number']).where('run_id', '=', run.id).execute();
    expect(Object.fromEntries(tries.map((t) => [t.task_id, t.try_number]))).toEqual({ extract: 2, check: 1 });

    expect(hubflow('dags', 'pause', 'cli-check').stdout).toBe('cli-check: paused\n');
    expect(hubflow('dags', 'pause', 'cli-check').stdout).toBe('cli-check: paused already\n');
    expect((await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'cli-check').executeTakeFirstOrThrow()).is_paused).toBe(true);
    expect(hubflow('dags', 'unpause', 'cli-check').stdout).toBe('cli-check: unpaused\n');
    expect((await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'cli-check').executeTakeFirstOrThrow()).is_paused).toBe(false);
  });

  it('refuses a state that is neither success nor failed, a replay naming nothing, and unknown letters', () => {
    const badState = hubflow('tasks', 'mark', '1', 'check', '--state', 'done');
    expect(badState.status).toBe(2);
    expect(badState.stderr).toMatch(/Allowed choices are success, failed/);
    const nothing = hubflow('dead-letters', 'replay');
    expect(nothing.status).toBe(2);
    expect(nothing.stderr).toMatch(/name the letters .* or a DAG/);
    const unknown = hubflow('dead-letters', 'replay', '99999999');
    expect(unknown.status).not.toBe(0);
    expect(unknown.stderr).toMatch(/no dead letter 99999999/);
  });
});
