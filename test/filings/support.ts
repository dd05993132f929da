import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'kysely';
import filingCycle from '../../dags/filing-cycle.ts';
import { hubDb } from '../../dags/resources.ts';
import type { Executor } from '../../server/engine/executor.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { seedHub, type SeedOptions } from '../../demo/seed.ts';
import { startWorker } from '../../server/processes.ts';
import type { FilingEnv } from '../../tasks/filings/steps.ts';
import { DEMO_SUBMITTERS } from '../../tasks/filings/submitter.ts';
import { alertWebhook, testRuntime, waitForRun, type TestRuntime } from '../support.ts';

/**
 * A runtime with the filing-cycle DAG, its own seeded hub schema, staging and outbox folders,
 * and an alert webhook that records what it is sent. Seed 3 with 3 tenants gives employers in
 * all three filing countries: northwind-health (GB, US, NL), globex-media (US), initech-media (CA, FR).
 */
export interface FilingHarness {
  rt: TestRuntime;
  hubSchema: string;
  staging: string;
  outbox: string;
  alerts: { message: string; kind: string; taskId?: string }[];
  worker: Executor | undefined;
  /** The steps' environment for running a filing in this process. */
  env(runId?: number): FilingEnv;
  close(): Promise<void>;
}

export const SEED = { tenants: 3, workers: 400, seed: 3 } as const;

export async function filingHarness(options: { worker?: boolean; seed?: SeedOptions } = {}): Promise<FilingHarness> {
  const root = await mkdtemp(path.join(os.tmpdir(), 'hubflow-filings-'));
  const tag = path
    .basename(root)
    .replace(/[^a-z0-9]/gi, '')
    .toLowerCase()
    .slice(-8);
  const hubSchema = `f_${tag}`;
  const staging = path.join(root, 'staging');
  const outbox = path.join(root, 'outbox');
  const webhook = await alertWebhook<FilingHarness['alerts'][number]>();
  const alerts = webhook.alerts;
  const rt = await testRuntime(
    [filingCycle],
    {
      HUBFLOW_HUB_SCHEMA: hubSchema,
      HUBFLOW_STAGING_DIR: staging,
      HUBFLOW_OUTBOX_DIR: outbox,
      HUBFLOW_ALERT_WEBHOOK: webhook.url,
    },
    [hubDb],
  );
  await seedHub(rt.connections.hub(), hubSchema, options.seed ?? SEED);
  const worker = options.worker === false ? undefined : startWorker(rt, { concurrency: 4 });
  return {
    rt,
    hubSchema,
    staging,
    outbox,
    alerts,
    worker,
    env: (runId = 1) => ({
      hub: rt.connections.hub(),
      hubSchema,
      entities: HUB_ENTITIES,
      stagingDir: staging,
      outboxDir: outbox,
      runId,
      submitters: [DEMO_SUBMITTERS],
      test: false,
    }),
    async close() {
      await worker?.close();
      await sql`drop schema if exists ${sql.id(hubSchema)} cascade`.execute(rt.db);
      await rt.close();
      webhook.close();
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Runs the cycle for the daily interval starting at `day` 06:00 London (GMT in winter) and waits. */
export async function runCycle(h: FilingHarness, day: string, conf: Record<string, unknown> = {}): Promise<{ id: number; state: string }> {
  const run = await h.rt.engine.triggerRun('filing-cycle', { logicalDate: new Date(`${day}T06:00:00Z`), conf: { submitters: DEMO_SUBMITTERS, ...conf } });
  return waitForRun(h.rt, run.id, 45_000);
}

export async function taskErrors(h: FilingHarness, runId: number): Promise<{ task: string; message: string }[]> {
  const rows = await h.rt.db
    .selectFrom('task_instances')
    .select(['task_id', 'map_index', 'error'])
    .where('run_id', '=', runId)
    .where('state', '=', 'failed')
    .orderBy('id')
    .execute();
  return rows.map((r) => ({ task: `${r.task_id}[${r.map_index}]`, message: (r.error as { message?: string } | null)?.message ?? '' }));
}

/** Sum of a payroll column in minor units, computed by PostgreSQL (exact numeric), for checks. */
export async function hubSum(
  h: FilingHarness,
  column: 'gross' | 'income_tax' | 'employee_social' | 'employer_social',
  where: { orgId: string; from: string; to: string; excludeWorkers: string[] },
): Promise<number> {
  const { rows } = await sql<{ cents: string }>`
    select coalesce(sum(p.${sql.id(column)}), 0) * 100 as cents
      from ${sql.id(h.hubSchema, 'payroll_results')} p
      join ${sql.id(h.hubSchema, 'contracts')} k on k.tenant_id = p.tenant_id and k.contract_id = p.contract_id
     where k.org_id = ${where.orgId} and p.pay_date between ${where.from}::date and ${where.to}::date
       and not (p.worker_id = any(${where.excludeWorkers}::text[]))`.execute(h.rt.db);
  return Number(rows[0]!.cents);
}
