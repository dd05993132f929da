import { afterEach, describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import type { Executor } from '../../server/engine/executor.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

let rt: TestRuntime | undefined;
let worker: Executor | undefined;
afterEach(async () => {
  await worker?.close();
  await rt?.close();
  rt = worker = undefined;
});

describe('job ids', () => {
  it('keep apart a mapped task’s instance and a task named after it: both run', async () => {
    const ran: string[] = [];
    const dag = defineDag({
      id: 'lookalikes',
      tasks: {
        list: task({ run: () => ['only'] }),
        x: task({ map: 'list', run: (ctx) => void ran.push(`x[${ctx.mapIndex}]`) }),
        'x.0': task({ run: () => void ran.push('x.0') }),
      },
    });
    rt = await testRuntime([dag]);
    const ids = [
      rt.engine.dispatcher.jobId({ runId: 1, taskId: 'x', mapIndex: 0, generation: 0 }),
      rt.engine.dispatcher.jobId({ runId: 1, taskId: 'x.0', mapIndex: -1, generation: 0 }),
    ];
    expect(ids[0]).not.toBe(ids[1]);
    expect(ids[0]).toMatch(/\.r1\/x\/0\/g0$/);

    worker = startWorker(rt);
    const run = await rt.engine.triggerRun('lookalikes');
    expect((await waitForRun(rt, run.id, 15_000)).state).toBe('success');
    expect(ran.sort()).toEqual(['x.0', 'x[0]']);
  });

  it('cannot meet a task id holding their separator: such a DAG does not load', () => {
    expect(() => defineDag({ id: 'slashed', tasks: { 'a/0': task({ run: () => null }) } })).toThrow(/a\/0.*letters, digits/);
  });
});
