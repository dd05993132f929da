import { defineDag, defineResource, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const iso = (ms: number) => new Date(ms).toISOString();

/** The bars of each row of a gantt page, as kind and tooltip. */
function bars(body: string): { task: string; state: string; bars: { kind: string; title: string }[] }[] {
  const rows = body.split('<div class="grow" data-task="').slice(1);
  return rows.map((row) => ({
    task: row.slice(0, row.indexOf('"')),
    state: /data-state="([^"]*)"/.exec(row)![1]!,
    bars: [...row.matchAll(/data-kind="([^"]*)"[^>]* title="([^"]*)"/g)].map((m) => ({ kind: m[1]!, title: m[2]! })),
  }));
}

describe('the gantt of a run held back by a blackout', () => {
  let rt: TestRuntime;
  let worker: Executor;
  const windowEnd = Date.now() + 2_500;

  beforeAll(async () => {
    const payroll = defineResource({
      id: 'payroll-db',
      deferJitter: '300ms',
      blackouts: [{ reason: 'payroll batch', from: iso(Date.now() - 60_000), to: iso(windowEnd) }],
    });
    const dag = defineDag({ id: 'sync', tasks: { read: task({ uses: ['payroll-db'], run: () => 'read' }) } });
    rt = await testRuntime([dag], {}, [payroll]);
    worker = startWorker(rt);
  });
  afterAll(async () => {
    await worker?.close();
    await rt?.close();
  });

  it('hatches the wait with its reason while the instance is deferred, and after it has run', async () => {
    const run = await rt.engine.triggerRun('sync');
    const app = await createServer(rt);
    try {
      const reason = `payroll-db: payroll batch until ${iso(windowEnd)}`;
      for (let i = 0; i < 50; i++) {
        const ti = await rt.db.selectFrom('task_instances').select('state').where('run_id', '=', run.id).executeTakeFirstOrThrow();
        if (ti.state === 'deferred') break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const waiting = bars((await app.inject({ method: 'GET', url: `/runs/${run.id}/gantt` })).body);
      expect(waiting).toEqual([{ task: 'read', state: 'deferred', bars: [{ kind: 'deferred', title: expect.stringContaining(`deferred: ${reason}`) }] }]);

      expect((await waitForRun(rt, run.id)).state).toBe('success');
      const done = bars((await app.inject({ method: 'GET', url: `/runs/${run.id}/gantt` })).body);
      expect(done).toHaveLength(1);
      expect(done[0]!.state).toBe('success');
      expect(done[0]!.bars.map((b) => b.kind)).toEqual([...(done[0]!.bars.length === 3 ? ['deferred', 'queued'] : ['deferred']), 'run']);
      expect(done[0]!.bars[0]!.title).toContain(`deferred: ${reason}`);
    } finally {
      await app.close();
    }
  });
});
