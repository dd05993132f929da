import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import type { Executor } from '../../server/engine/executor.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let worker: Executor | undefined;
afterEach(async () => {
  await worker?.close();
  await rt?.close();
  rt = worker = undefined;
});

const dag = defineDag({ id: 'checked', tasks: { first: task({ run: () => 1 }), second: task({ after: ['first'], run: () => 2 }) } });

describe('a test run', () => {
  it('sends its jobs to its own queue only, which the general recovery sweep leaves alone', async () => {
    rt = await testRuntime([dag]);
    const { run, queue } = await rt.engine.testRun('checked', new Date('2026-01-05T00:00:00Z'));
    expect(run.state).toBe('running');
    const ti = await rt.db.selectFrom('task_instances').selectAll().where('run_id', '=', run.id).where('task_id', '=', 'first').executeTakeFirstOrThrow();
    const ref = { runId: run.id, taskId: 'first', mapIndex: -1, generation: ti.generation };
    const jobId = rt.engine.dispatcher.jobId(ref);
    expect(await rt.engine.dispatcher.queue.getJobState(jobId)).toBe('unknown');
    const own = rt.engine.dispatcher.queueOf(run.id);
    expect(own.name).toBe(queue);
    expect(await own.getJobState(jobId)).toBe('waiting');

    // Its job lost: a scheduler's sweep does not touch it; the test process's own sweep does.
    await own.remove(jobId);
    expect(await rt.engine.sweep()).toBe(0);
    expect(await rt.engine.dispatcher.queue.count()).toBe(0);
    expect(await rt.engine.sweep([run.id])).toBe(1);
    expect(await own.getJobState(jobId)).toBe('waiting');

    // A worker on its queue runs it through; clearing it afterwards means testing again.
    worker = startWorker(rt, { queue });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    expect(await taskStates(rt, run.id)).toEqual({ first: 'success', second: 'success' });
    await expect(rt.engine.clear(run.id, { tasks: ['first'] })).rejects.toThrow(/hubflow dags test checked --date 2026-01-05T00:00:00.000Z/);
  });
});
