import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineDag, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = path.join(root, 'bin/hubflow.js');

const dag = defineDag({
  id: 'cli-logs',
  tasks: {
    fetch: task({
      retry: { attempts: 2, base: '0s' },
      run: (ctx) => {
        ctx.log.info({ page: ctx.tryNumber }, 'fetching');
        console.log(`printed on try ${ctx.tryNumber}`);
        if (ctx.tryNumber === 1) throw new Error('timeout talking to the hub');
      },
    }),
    fan: task({ after: ['fetch'], run: () => ['a', 'b'] }),
    each: task<string>({ map: 'fan', run: (ctx) => console.log(`item ${ctx.item}`) }),
  },
});

let rt: TestRuntime;
let worker: Executor;
let runId: number;
beforeAll(async () => {
  rt = await testRuntime([dag]);
  worker = startWorker(rt);
  const run = await rt.engine.triggerRun('cli-logs');
  runId = run.id;
  expect((await waitForRun(rt, run.id)).state).toBe('success');
});
afterAll(async () => {
  await worker?.close();
  await rt?.close();
});

function hubflow(...args: string[]) {
  const env = { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: path.join(root, 'test/fixtures/dags') };
  const result = spawnSync(process.execPath, [bin, ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** The log lines without their timestamps. */
const lines = (stdout: string) =>
  stdout
    .trimEnd()
    .split('\n')
    .map((l) => l.replace(/^\d{4}-\d\d-\d\dT[\d:.]+Z /, ''));

describe('hubflow tasks logs', () => {
  it('prints the latest try by default, another with --try, and says on stderr which one it is', () => {
    const latest = hubflow('tasks', 'logs', String(runId), 'fetch');
    expect(latest.status).toBe(0);
    expect(lines(latest.stdout)).toEqual(['info   fetching {"page":2}', 'info   printed on try 2']);
    expect(latest.stderr).toContain(`run ${runId} (cli-logs), task fetch, try 2 (tries: 1 retry, 2 success)`);

    const first = hubflow('tasks', 'logs', String(runId), 'fetch', '--try', '1');
    expect(first.status).toBe(0);
    const printed = lines(first.stdout);
    expect(printed.slice(0, 3)).toEqual([
      'info   fetching {"page":1}',
      'info   printed on try 1',
      'error  try 1 of 2 failed: Error: timeout talking to the hub',
    ]);
    // The stack follows on its own lines.
    expect(printed[3]).toMatch(/^\s+at /);
  });

  it('prints one JSON document with --json, and a mapped instance with --map', () => {
    const res = hubflow('tasks', 'logs', String(runId), 'each', '--map', '1', '--json');
    expect(res.status).toBe(0);
    const doc = JSON.parse(res.stdout) as { task: string; map_index: number; try: number; lines: { level: string; line: string }[] };
    expect(doc).toMatchObject({ task: 'each', map_index: 1, item: 'b', try: 1 });
    const plain = hubflow('tasks', 'logs', String(runId), 'each', '--map', '0');
    expect(lines(plain.stdout)).toEqual(['info   item a']);
    expect(plain.stderr).toContain(`run ${runId} (cli-logs), task each [0] a, try 1 (tries: 1 success)`);
    expect(doc.lines.map((l) => [l.level, l.line])).toEqual([['info', 'item b']]);
  });

  it('fails naming the run, task, try or map index that does not exist', () => {
    const cases: [string[], string][] = [
      [['999999', 'fetch'], 'hubflow: no run 999999'],
      [[String(runId), 'nope'], `hubflow: run ${runId} (DAG 'cli-logs') has no task 'nope'`],
      [[String(runId), 'fetch', '--try', '3'], `hubflow: task 'fetch' of run ${runId} has no try 3: its tries are 1 to 2`],
      [[String(runId), 'each'], `hubflow: task 'each' of run ${runId} is mapped over 2 items: name one with map index 0 to 1`],
    ];
    for (const [args, message] of cases) {
      const res = hubflow('tasks', 'logs', ...args);
      expect([args, res.status, res.stderr.trim()]).toEqual([args, 2, message]);
      expect(res.stdout).toBe('');
    }
    const bad = hubflow('tasks', 'logs', String(runId), 'fetch', '--try', '0');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toContain("option '--try <n>' argument '0' is invalid");
  });
});
