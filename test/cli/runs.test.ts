import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { loadDags } from '../../server/engine/loader.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.join(root, 'test/fixtures/dags');
const bin = path.join(root, 'bin/hubflow.js');

let rt: TestRuntime;
const children: ChildProcess[] = [];
beforeAll(async () => {
  rt = await testRuntime(await loadDags(fixtures));
});
afterEach(() => {
  for (const c of children.splice(0)) c.kill('SIGKILL');
});
afterAll(async () => {
  await rt?.close();
});

const env = () => ({ ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: fixtures });

/** Runs the real `hubflow` command against this file's store and queues, to its end. */
function hubflow(...args: string[]) {
  const result = spawnSync(process.execPath, [bin, ...args], { env: env(), encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr, pid: result.pid };
}

/** Starts `hubflow` in the background; `exited` resolves with its exit code and output. */
function start(...args: string[]) {
  const child = spawn(process.execPath, [bin, ...args], { env: env() });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const exited = new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (status) => resolve({ status, stdout, stderr })),
  );
  return { child, exited };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const runState = async (id: number) => (await rt.db.selectFrom('dag_runs').select('state').where('id', '=', id).executeTakeFirstOrThrow()).state;

describe('hubflow runs cancel', () => {
  it('cancels one run by id, and the queued runs of a DAG by state', async () => {
    // No worker here: the first run is running with its task queued, the others queued.
    const runs = [];
    for (const day of ['01', '02', '03']) runs.push(await rt.engine.triggerRun('cli-slow', { logicalDate: new Date(`2025-05-${day}T06:00:00Z`) }));
    expect(await runState(runs[0]!.id)).toBe('running');

    const one = hubflow('runs', 'cancel', String(runs[0]!.id), '--reason', 'wrong date', '--json');
    expect(one.status).toBe(0);
    expect(JSON.parse(one.stdout)).toEqual([expect.objectContaining({ run: runs[0]!.id, dag: 'cli-slow', was: 'running', tasks_cancelled: 3 })]);
    expect(await taskStates(rt, runs[0]!.id)).toEqual({ wait: 'cancelled', fan: 'cancelled', work: 'cancelled' });
    // Its slot went to the next queued run.
    expect(await runState(runs[1]!.id)).toBe('running');

    const again = hubflow('runs', 'cancel', String(runs[0]!.id));
    expect(again.status).not.toBe(0);
    expect(again.stderr).toContain(`run ${runs[0]!.id} has already ended (cancelled)`);

    const queued = hubflow('runs', 'cancel', '--dag', 'cli-slow', '--state', 'queued');
    expect(queued.status).toBe(0);
    expect(queued.stdout).toMatch(new RegExp(`${runs[2]!.id}\\s+cli-slow\\s+\\S+\\s+manual\\s+queued`));
    expect(await runState(runs[1]!.id)).toBe('running');
    expect(await runState(runs[2]!.id)).toBe('cancelled');

    const rest = hubflow('runs', 'cancel', '--dag', 'cli-slow');
    expect(rest.status).toBe(0);
    expect(await runState(runs[1]!.id)).toBe('cancelled');
    const shown = hubflow('runs', 'show', String(runs[0]!.id));
    expect(shown.stdout).toContain(': cancelled (wrong date)');
    expect(shown.stdout).toMatch(/wait\s+cancelled\s+0\s+run cancelled: wrong date/);
  });
});

describe('Ctrl-C', () => {
  it('of dags backfill says which runs it leaves and the command that cancels them, and exits non-zero', async () => {
    const { child, exited } = start('dags', 'backfill', 'cli-slow', '--from', '2025-06-01T06:00:00Z', '--to', '2025-06-05T06:00:00Z');
    await until(async () => {
      const running = await rt.db
        .selectFrom('task_instances')
        .select('id')
        .where('dag_id', '=', 'cli-slow')
        .where('task_id', '=', 'wait')
        .where('state', '=', 'running')
        .execute();
      return running.length > 0;
    }, 'the backfill to start its first task');
    child.kill('SIGINT');
    const { status, stderr } = await exited;
    expect(status).toBe(130);
    expect(stderr).toMatch(/interrupted: left 4 queued and 1 running \(logical dates 2025-06-01T06:00:00.000Z to 2025-06-05T06:00:00.000Z\)/);
    const command = /To cancel them: hubflow (.+)\n/.exec(stderr)?.[1];
    expect(command).toBe('runs cancel --dag cli-slow --type backfill');

    const cancelled = hubflow(...command!.split(' '), '--json');
    expect(cancelled.status).toBe(0);
    expect((JSON.parse(cancelled.stdout) as unknown[]).length).toBe(5);
    const left = await rt.db.selectFrom('dag_runs').select('state').where('run_type', '=', 'backfill').where('dag_id', '=', 'cli-slow').execute();
    expect(left.map((r) => r.state)).toEqual(Array(5).fill('cancelled'));
  });

  it('of dags test says the run it leaves and the command that cancels it', async () => {
    const { child, exited } = start('dags', 'test', 'cli-slow', '--date', '2025-07-01T06:00:00Z', '--conf', '{"holdMs":60000}');
    await until(async () => {
      const running = await rt.db.selectFrom('task_instances').select('id').where('dag_id', '=', 'cli-slow').where('state', '=', 'running').execute();
      return running.length > 0;
    }, 'the test to start its task');
    const run = await rt.db
      .selectFrom('dag_runs')
      .select('id')
      .where('run_type', '=', 'test')
      .where('logical_date', '=', new Date('2025-07-01T06:00:00Z'))
      .executeTakeFirstOrThrow();
    child.kill('SIGINT');
    const { status, stderr } = await exited;
    expect(status).toBe(130);
    expect(stderr).toContain(`interrupted: left 0 queued and 1 running (run ${run.id} at 2025-07-01T06:00:00.000Z)`);
    expect(stderr).toContain(`To cancel it: hubflow runs cancel ${run.id}\n`);
    expect(hubflow('runs', 'cancel', String(run.id)).status).toBe(0);
    expect(await runState(run.id)).toBe('cancelled');
  });
});

describe('hubflow dags test next to a running worker', () => {
  it("runs every task of its run itself, and none of another run's", async () => {
    const worker = start('worker');
    const others = [];
    for (const day of ['01', '02', '03'])
      others.push(await rt.engine.triggerRun('cli-slow', { logicalDate: new Date(`2025-08-${day}T06:00:00Z`), conf: { holdMs: 100 } }));
    const test = hubflow('dags', 'test', 'cli-slow', '--date', '2025-08-10T06:00:00Z', '--conf', '{"holdMs":100}');
    expect(test.status).toBe(0);
    for (const r of others) expect((await waitForRun(rt, r.id, 60_000)).state).toBe('success');

    const attempts = await rt.db
      .selectFrom('attempts as a')
      .innerJoin('task_instances as ti', 'ti.id', 'a.ti_id')
      .innerJoin('dag_runs as r', 'r.id', 'ti.run_id')
      .select(['r.run_type', 'a.worker'])
      .where('r.logical_date', '>=', new Date('2025-08-01T00:00:00Z'))
      .where('r.logical_date', '<', new Date('2025-09-01T00:00:00Z'))
      .execute();
    const byType = (type: string) => new Set(attempts.filter((a) => a.run_type === type).map((a) => a.worker));
    expect(byType('test')).toEqual(new Set([String(test.pid)]));
    expect(byType('manual')).toEqual(new Set([String(worker.child.pid)]));
    expect(attempts.filter((a) => a.run_type === 'test')).toHaveLength(14);
  });
});
