import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { startWorker } from '../server/processes.ts';
import { loadDags } from '../server/engine/loader.ts';
import { testRuntime, waitForRun, type TestRuntime } from './support.ts';

export const INTEGRATION_DAGS = path.join(fileURLToPath(new URL('.', import.meta.url)), 'fixtures/integrations');

/**
 * A store holding two runs of the fixture sync: a scheduled one that loaded its interval (cut an
 * hour ago) and a manual one that failed, leaving a dead letter: success 50%, below its 90% SLO.
 */
export async function syncHistory(): Promise<TestRuntime> {
  const rt = await testRuntime(await loadDags(INTEGRATION_DAGS));
  const worker = startWorker(rt);
  try {
    const dag = rt.engine.dag('sync-to-warehouse');
    const cut = new Date(Math.floor(Date.now() / 1000) * 1000 - 3_600_000);
    const start = new Date(cut.getTime() - 86_400_000);
    const scheduled = await rt.engine.createRun(dag, { logicalDate: start, intervalStart: start, intervalEnd: cut, runType: 'scheduled', dueAt: cut });
    await rt.engine.activate(dag.id);
    await waitForRun(rt, scheduled!.id);
    await waitForRun(rt, (await rt.engine.triggerRun(dag.id, { conf: { fail: true } })).id);
  } finally {
    await worker.close();
  }
  return rt;
}
