import { maskSecrets } from '../core/redact.ts';
import path from 'node:path';
import { DEMO_FILING_CONF } from '../tasks/filing-cycle.ts';
import { reconcileReport } from './history.ts';
import { printRunSummary, serveUntilSignal, watchRuns } from './output.ts';
import { describeCollision } from './windows.ts';
import { findCollisions } from '../server/engine/collisions.ts';
import { BUNDLED_DAGS_DIR, loadDagFolder } from '../server/engine/dag-imports.ts';
import type { DagRegistry } from '../server/engine/loader.ts';
import { defineResource, type Resource } from '../server/engine/resources.ts';
import { startServer } from '../server/http/server.ts';
import { mutateHub } from '../demo/mutate.ts';
import { DEMO_HUB, seedHub } from '../demo/seed.ts';
import { hubStats } from '../demo/stats.ts';
import { startWorker } from '../server/processes.ts';
import { loadConfig } from '../core/config.ts';
import { openRuntime, type Runtime } from '../server/runtime.ts';
import type { DagRunRow } from '../server/store/schema.ts';

/** `hubflow demo`: runs the example DAGs on embedded defaults and shows where to look. */
export async function runDemo(opts: { dag: string; keep?: boolean }): Promise<void> {
  const config = loadConfig();
  // The demo runs the DAG folder's DAGs with resources of its own: holding payroll-db for a
  // moment (step 3) changes the demo's resources, never the registry the folder loaded.
  const loaded = await loadDagFolder(path.resolve(config.HUBFLOW_DAGS_DIR ?? BUNDLED_DAGS_DIR));
  const resources = new Map(loaded.resources);
  const dags: DagRegistry = { ...loaded, resources };
  const rt = await openRuntime({ config, dags, defaultLogLevel: 'warn' });
  const worker = startWorker(rt);
  const server = await startServer(rt, { fallbackToFreePort: true });
  const say = (text: string) => process.stdout.write(`${text}\n`);
  const sync = rt.dags.dags.get(SYNC_DAG);
  const now = new Date();
  const collisions = findCollisions(rt.dags, now, new Date(now.getTime() + 86_400_000));
  // The walk-through runs now, whatever the hour: the resources' own windows (step 2 shows
  // them) would hold it for hours at night, so its copies keep only the demo's hold (step 3).
  for (const [id, resource] of resources) resources.set(id, Object.freeze({ ...resource, blackouts: [] }));
  try {
    say(`1. ${opts.dag}: per-tenant fan-out, fan-in, a retry\n`);
    const run = await rt.engine.triggerRun(opts.dag, { conf: { source: 'demo' } });
    const [finished] = await watchRuns(rt, [run.id], `demo ${opts.dag}`);
    await printRunSummary(rt, finished!);
    const runs = [finished!];

    if (sync && rt.dags.resources.has('payroll-db')) {
      say(`\n2. The payroll/warehouse collision, caught before anything runs (hubflow windows check):\n`);
      say(collisions.length ? collisions.map(describeCollision).join('\n') : '(none in the next day)');
      say(`\n3. ...and avoided at run time: payroll-db is held for the next ${DEMO_HOLD_MS / 1000} s, as the payroll batch would hold it:\n`);
      resources.set('payroll-db', heldFor(resources.get('payroll-db')!, DEMO_HOLD_MS));
      const syncRun = await rt.engine.triggerRun(SYNC_DAG, { conf: { source: 'demo' } });
      await new Promise((r) => setTimeout(r, 300));
      const waiting = await rt.db
        .selectFrom('task_instances')
        .select(['task_id', 'state', 'deferred_reason'])
        .where('run_id', '=', syncRun.id)
        .where('state', '=', 'deferred')
        .execute();
      for (const w of waiting) say(`   ${w.task_id}: ${w.state} (${w.deferred_reason})`);
      const [syncFinished] = await watchRuns(rt, [syncRun.id], `demo ${SYNC_DAG}`);
      await printRunSummary(rt, syncFinished!);
      runs.push(syncFinished!);
    }

    say(`\n4. The nightly hub -> warehouse history: a demo hub, extracted per tenant, loaded as SCD2 history, reconciled:\n`);
    const history = await demoHistory(rt, say);
    runs.push(history);

    say(`\n5. Filings: the demo hub's Q4 2025 payroll as government filing files, validated, in the outbox (hubflow filings list).`);
    say(`   Their deadlines have passed, so each delivery is escalated as late (the log lines below; HUBFLOW_ALERT_WEBHOOK gets them too):\n`);
    const filingRun = await rt.engine.triggerRun('filing-cycle', { conf: { ...DEMO_FILING_CONF, source: 'demo' } });
    const [filed] = await watchRuns(rt, [filingRun.id], 'demo filing-cycle');
    await printRunSummary(rt, filed!);
    say(`   outbox: ${rt.connections.outboxDir}`);
    runs.push(filed!);

    const stores = `PostgreSQL ${rt.postgres.source} (schema ${rt.config.HUBFLOW_DB_SCHEMA}), Redis ${rt.redis.source}`;
    say(
      [
        '',
        `Look at: run page   ${server.url}/runs/${run.id}`,
        `         all runs   ${server.url}/`,
        `         bull-board ${server.url}/admin/queues`,
        `         API        ${server.url}/api/runs/${run.id}`,
        `         metrics    ${server.url}/metrics`,
        `         history    npm run hubflow -- reconcile report   (tables in schema ${rt.config.HUBFLOW_WAREHOUSE_SCHEMA})`,
        `         filings    npm run hubflow -- filings list       (${rt.connections.outboxDir})`,
        `Stores: ${stores}`,
        '',
      ].join('\n'),
    );
    if (runs.some((r) => r.state !== 'success')) process.exitCode = 1;
    const keep = opts.keep ?? process.stdout.isTTY;
    if (keep) {
      say('Serving until Ctrl-C.');
      await serveUntilSignal(rt, [() => server.close(), () => worker.close()]);
      return;
    }
  } catch (err) {
    process.stderr.write(`hubflow demo: ${maskSecrets(err instanceof Error ? err.message : String(err))}\n`);
    process.exitCode = 1;
  }
  // Whatever happened, the embedded services stop with the command.
  await server.close();
  await worker.close();
  await rt.close();
}

const SYNC_DAG = 'payroll-warehouse-sync';
const HISTORY_DAG = 'hub-nightly';

/**
 * Seeds the demo hub on first use (a day of changes on later ones, so each demo adds a later
 * snapshot to history), runs the nightly history DAG by hand and prints its reconciliation.
 */
async function demoHistory(rt: Runtime, say: (text: string) => void): Promise<DagRunRow> {
  const hub = rt.connections.hub();
  const schema = rt.connections.hubSchema;
  const workers = (await hubStats(hub, schema)).filter((c) => c.entity === 'workers').reduce((n, c) => n + c.rows, 0);
  if (!workers) {
    const seeded = await seedHub(hub, schema, DEMO_HUB);
    say(
      `   seeded ${schema}: ${Object.entries(seeded.rows)
        .map(([e, n]) => `${n} ${e}`)
        .join(', ')}`,
    );
  } else {
    const changed = await mutateHub(hub, schema, { seed: Math.floor(Date.now() / 86_400_000) % 1000, rate: 0.01, at: new Date() });
    say(
      `   ${schema} already seeded (${workers} workers): one day of changes: ${changed.updated} updated, ${changed.hired} hired, ${changed.terminated} terminated, ${changed.deleted} deleted`,
    );
  }
  // A run by hand covers the last complete night, as that night's scheduled run does: the
  // ledger keys loads by that interval, so the scheduled run finds it loaded (and applies only
  // what changed since).
  const run = await rt.engine.triggerRun(HISTORY_DAG, { conf: { source: 'demo' } });
  const [finished] = await watchRuns(rt, [run.id], `demo ${HISTORY_DAG}`);
  await printRunSummary(rt, finished!);
  say('');
  await reconcileReport(rt, run.id, false);
  say(`\n   history: schema ${rt.config.HUBFLOW_WAREHOUSE_SCHEMA} (workers_history, workers_current, workers_changes, load_batches, ...)`);
  return finished!;
}
const DEMO_HOLD_MS = 3_000;

/** A copy of a resource with a blackout from now for `ms`, as another batch holding it would be. */
function heldFor(resource: Resource, ms: number): Resource {
  const now = Date.now();
  const [hold] = defineResource({
    id: `${resource.id}-demo-hold`,
    blackouts: [{ reason: `payroll batch (demo hold)`, from: new Date(now).toISOString(), to: new Date(now + ms).toISOString() }],
  }).blackouts;
  return Object.freeze({ ...resource, deferJitterMs: 500, blackouts: [...resource.blackouts, hold!] });
}
