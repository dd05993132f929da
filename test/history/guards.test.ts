import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clearTasks } from '../../server/engine/clear.ts';
import { createServer as createHubflowServer } from '../../server/http/server.ts';
import { approveDeletes } from '../../tasks/history/apply.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { alertWebhook, waitForRun, type AlertWebhook } from '../support.ts';
import { historyHarness, runNight, type HistoryHarness } from './support.ts';

/**
 * What stops a bad load and what proves a good one: the mass-delete guard and its approval,
 * and reconciliation catching a partial load or a corrupted field, with the right severity.
 * One tenant of 1,500 workers, so one record is below the 0.1% failure line and three are above.
 */

let h: HistoryHarness;
let webhook: AlertWebhook<{ kind: string; message: string }>;
let alerts: { kind: string; message: string }[] = [];

const wh = (table: string) => sql.raw(`${h.whSchema}.${table}`);
const hubTable = (table: string) => sql.raw(`${h.hubSchema}.${table}`);

beforeAll(async () => {
  webhook = await alertWebhook();
  alerts = webhook.alerts;
  // Compressed staging end to end here; the other history tests load the default, plain text.
  h = await historyHarness({ tenants: 1, workers: 1500, seed: 5, env: { HUBFLOW_ALERT_WEBHOOK: webhook.url, HUBFLOW_STAGING_COMPRESSION: 'gzip' } });
  expect((await runNight(h, '2026-02-01')).state).toBe('success');
}, 120_000);

afterAll(async () => {
  await h?.close();
  webhook?.close();
});

async function reconciliation(runId: number, entity: string) {
  return h.rt.db.selectFrom('reconciliations').selectAll().where('run_id', '=', runId).where('entity', '=', entity).executeTakeFirstOrThrow();
}

const root = fileURLToPath(new URL('../..', import.meta.url));

function hubflowCli(...args: string[]) {
  return spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), ...args], { env: { ...process.env, ...h.rt.env }, encoding: 'utf8', timeout: 60_000 });
}

async function latestRun(): Promise<number> {
  const { id } = await h.rt.db.selectFrom('dag_runs').select('id').orderBy('id', 'desc').limit(1).executeTakeFirstOrThrow();
  return id;
}

describe('reconciliation', () => {
  it('escalates a critical field mismatch below 0.1% without failing the run', async () => {
    const runId = await latestRun();
    await sql`update ${wh('workers_history')} set email = 'someone.else@example.com' where is_current and worker_id = (select min(worker_id) from ${wh('workers_history')})`.execute(
      h.rt.db,
    );
    await clearTasks(h.rt.engine, runId, { tasks: ['reconcile'] });
    expect((await waitForRun(h.rt, runId, 45_000)).state).toBe('success');
    const r = await reconciliation(runId, 'workers');
    expect(r).toMatchObject({ mismatched: 1, missing_in_target: 0, missing_in_source: 0, severity: 'critical', status: 'escalated' });
    const fields = await h.rt.db.selectFrom('reconciliation_fields').selectAll().where('reconciliation_id', '=', r.id).execute();
    expect(fields).toEqual([expect.objectContaining({ field: 'email', field_class: 'pii', severity: 'critical', mismatched: 1 })]);
    expect(alerts.some((a) => a.kind === 'task_alert' && a.message.includes('critical reconciliation mismatch') && a.message.includes('email 1'))).toBe(true);
  });

  it('fails the run on a partial load: rows missing from the warehouse, counted, critical', async () => {
    const runId = await latestRun();
    // What a load that stopped short would leave: three current versions gone.
    await sql`delete from ${wh('workers_history')} where is_current and worker_id in (select worker_id from ${wh('workers_current')} order by worker_id desc limit 3)`.execute(
      h.rt.db,
    );
    await clearTasks(h.rt.engine, runId, { tasks: ['reconcile'] });
    expect((await waitForRun(h.rt, runId, 45_000)).state).toBe('failed');
    const r = await reconciliation(runId, 'workers');
    expect(r).toMatchObject({ missing_in_target: 3, missing_in_source: 0, severity: 'critical', status: 'failed' });
    expect(r.source_count - r.current_count).toBe(3);
    const missing = await h.rt.db
      .selectFrom('reconciliation_fields')
      .selectAll()
      .where('reconciliation_id', '=', r.id)
      .where('field', '=', '(record missing in warehouse)')
      .executeTakeFirstOrThrow();
    expect(missing.sample_keys).toHaveLength(3);
    const report = hubflowCli('reconcile', 'report', '--run', String(runId));
    expect(report.status).toBe(1);
    const line = report.stdout.split('\n').find((l) => /\bworkers\b/.test(l) && /failed/.test(l));
    expect(line).toMatch(/\s3\s+0\s+0\.\d+%\s+critical\s+failed$/);
    expect(report.stdout).toContain('(record missing in warehouse)');
    // The run page and the API show it to the operator who opens the run.
    const app = await createHubflowServer(h.rt);
    try {
      const page = await app.inject({ method: 'GET', url: `/runs/${runId}` });
      expect(page.body).toContain('<h2>Reconciliation</h2>');
      expect(page.body).toMatch(/<td>workers<\/td>(\s*<td class="num">\d+<\/td>){6}\s*<td class="num">3<\/td>\s*<td class="num">0<\/td>/);
      expect(page.body).toContain('(record missing in warehouse)');
      const api = (await app.inject({ method: 'GET', url: `/api/runs/${runId}` })).json() as {
        reconciliations: { entity: string; missing_in_target: number; status: string }[];
      };
      expect(api.reconciliations.find((r) => r.entity === 'workers')).toMatchObject({ missing_in_target: 3, status: 'failed' });
      const metrics = (await app.inject({ method: 'GET', url: '/metrics' })).body;
      // Three records missing and the corrupted e-mail: four differences, drift the operator sees.
      expect(metrics).toMatch(/hubflow_reconciliation_differences\{entity="workers",tenant="[a-z0-9-]+"\} 4\n/);
      expect(metrics).toMatch(/hubflow_reconciliation_match_ratio\{entity="workers",tenant="[a-z0-9-]+"\} 0\.99733/);
    } finally {
      await app.close();
    }
    const letter = await h.rt.db
      .selectFrom('dead_letters')
      .select('error')
      .where('run_id', '=', runId)
      .where('task_id', '=', 'reconcile')
      .executeTakeFirstOrThrow();
    expect(JSON.stringify(letter.error)).toContain('3 missing in warehouse');
  });

  it('a next load restores the missing rows; the corrupted field, which the hub did not change, is reported until fixed', async () => {
    expect((await runNight(h, '2026-02-02')).state).toBe('success');
    const r = await reconciliation(await latestRun(), 'workers');
    expect(r).toMatchObject({ status: 'escalated', mismatched: 1, missing_in_target: 0, missing_in_source: 0 });
  });
});

describe('the mass-delete guard', () => {
  it('stops a load that would delete more than 2% of a tenant, applies nothing, and goes on once approved', async () => {
    const hub = h.rt.connections.hub();
    const before = Number((await sql<{ n: string }>`select count(*) as n from ${wh('workers_current')}`.execute(h.rt.db)).rows[0]!.n);
    const gone = (await sql<{ worker_id: string }>`select worker_id from ${hubTable('workers')} order by worker_id limit 60`.execute(hub)).rows.map(
      (r) => r.worker_id,
    );
    for (const t of ['payroll_results', 'contracts', 'workers']) await sql`delete from ${hubTable(t)} where worker_id = any(${gone})`.execute(hub);

    const run = await runNight(h, '2026-02-03');
    expect(
      run.state,
      JSON.stringify(await h.rt.db.selectFrom('task_instances').select(['task_id', 'map_index', 'state']).where('run_id', '=', run.id).execute()),
    ).toBe('failed');
    const load = await h.rt.db
      .selectFrom('task_instances')
      .select(['state', 'error', 'try_number'])
      .where('run_id', '=', run.id)
      .where('task_id', '=', 'load')
      .where('map_index', '=', 1)
      .executeTakeFirstOrThrow();
    expect(load.state).toBe('failed');
    expect(load.try_number).toBe(1); // permanent: not retried
    expect(JSON.stringify(load.error)).toMatch(/deletes 60 of 1\d{3} live rows .* above the 2\.0% guard/);
    expect(Number((await sql<{ n: string }>`select count(*) as n from ${wh('workers_current')}`.execute(h.rt.db)).rows[0]!.n)).toBe(before);

    const tenant = (await sql<{ t: string }>`select tenant_id as t from ${hubTable('clients')}`.execute(hub)).rows[0]!.t;
    await approveDeletes(await h.rt.connections.warehouse(), HUB_ENTITIES, {
      entity: '*',
      tenant,
      logicalDate: '2026-02-03',
      approvedBy: 'test',
      reason: 'erasure requests',
    });
    await clearTasks(h.rt.engine, run.id);
    expect((await waitForRun(h.rt, run.id, 45_000)).state).toBe('success');
    const after = Number((await sql<{ n: string }>`select count(*) as n from ${wh('workers_current')}`.execute(h.rt.db)).rows[0]!.n);
    expect(before - after).toBe(60);
    const tombstones = await sql<{
      n: string;
    }>`select count(*) as n from ${wh('workers_history')} where is_deleted and is_current and worker_id = any(${gone})`.execute(h.rt.db);
    expect(Number(tombstones.rows[0]!.n)).toBe(60);
  });
});
