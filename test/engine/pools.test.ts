import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { loadDags } from '../../server/engine/loader.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const fixtures = path.join(root, 'test/fixtures/pool-dags');

let rt: TestRuntime | undefined;
const workers: ChildProcess[] = [];
afterAll(async () => {
  for (const w of workers) w.kill('SIGKILL');
  await rt?.close();
});

describe('a pool of 2 slots', () => {
  it('never has more than 2 slots in use, with 3 workers in separate processes', async () => {
    rt = await testRuntime(await loadDags(fixtures));
    const journal = path.join(mkdtempSync(path.join(tmpdir(), 'hubflow-pool-')), 'journal');
    for (let i = 0; i < 3; i++) {
      workers.push(
        spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), 'worker', '--concurrency', '4'], {
          env: { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: fixtures },
          stdio: 'ignore',
        }),
      );
    }
    const run = await rt.engine.triggerRun('pooled', { conf: { journal } });
    expect((await waitForRun(rt, run.id, 60_000)).state).toBe('success');

    const events = readFileSync(journal, 'utf8')
      .trim()
      .split('\n')
      .map((line) => {
        const [at, delta, pid] = line.split(' ');
        return { at: Number(at), delta: Number(delta), pid: Number(pid) };
      })
      // Releases before acquisitions at the same millisecond: a slot freed and taken in one tick is not overlap.
      .sort((a, b) => a.at - b.at || a.delta - b.delta);
    let inUse = 0;
    let peak = 0;
    for (const e of events) {
      inUse += e.delta;
      peak = Math.max(peak, inUse);
    }
    expect(events).toHaveLength(2 * 9);
    expect(peak).toBe(2); // full, never over
    expect(new Set(events.map((e) => e.pid)).size).toBeGreaterThan(1); // the work really was spread over processes
  });
});
