import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { histogramOf, recordSyncLatency } from '../../server/engine/sync-latency.ts';
import { createServer } from '../../server/http/server.ts';
import { INTEGRATION_DAGS, syncHistory } from '../integration-support.ts';
import type { TestRuntime } from '../support.ts';

/**
 * Where a latency figure comes from, as each surface shows it: the run-end proxy while nothing
 * is measured, the measured histograms once a load records them, and the proxy again when the
 * measurements leave the window.
 */

const bin = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/hubflow.js');
let rt: TestRuntime;
let app: FastifyInstance;

beforeAll(async () => {
  rt = await syncHistory();
  app = await createServer(rt);
});
afterAll(async () => {
  await app?.close();
  await rt?.close();
});

type Sli = { latencySource: string | null; latencyMeasured: number; latencyFrom: string[]; latencyP50Seconds: number; latencyP99Seconds: number };
const api = async () => {
  const res = await app.inject({ method: 'GET', url: '/api/integrations' });
  expect(res.statusCode).toBe(200);
  return (res.json() as { integrations: { sli: Sli; slos: { slo: string; summary: string }[] }[] }).integrations[0]!;
};
const page = async () => (await app.inject({ method: 'GET', url: '/integrations' })).body;
const cliTable = () =>
  spawnSync(process.execPath, [bin, 'integrations'], {
    env: { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: INTEGRATION_DAGS },
    encoding: 'utf8',
    timeout: 60_000,
  }).stdout;

describe('the source of an integration latency', () => {
  it('is the labelled proxy while nothing is measured', async () => {
    const s = await api();
    expect(s.sli).toMatchObject({ latencySource: 'proxy', latencyMeasured: 0, latencyFrom: [] });
    expect(s.slos.find((c) => c.slo === 'latency_p50')!.summary).toContain('(proxy: run end minus interval end, nothing measured)');
    expect(await page()).toContain('proxy: run end − interval end');
  });

  it('is the measured histograms once a load records them, in the API, the page and the CLI', async () => {
    const run = await rt.db.selectFrom('dag_runs').select('id').where('run_type', '=', 'scheduled').executeTakeFirstOrThrow();
    const versions = [40, 45, 50, 55, 70, 80, 100, 500];
    await recordSyncLatency(rt.db, { runId: run.id, taskId: 'load' }, [
      { kind: 'version', entity: 'workers', scope: 'acme', source: 'updated_at', visibleAt: new Date(), histogram: histogramOf(versions.slice(0, 5)) },
      { kind: 'version', entity: 'workers', scope: 'globex', source: 'updated_at', visibleAt: new Date(), histogram: histogramOf(versions.slice(5)) },
    ]);
    const s = await api();
    expect(s.sli).toMatchObject({ latencySource: 'measured', latencyMeasured: 8, latencyFrom: ['updated_at'] });
    // The 4th of 8 is 55 s, in the (45, 60] bucket; the largest, 500 s, bounds p99.
    expect(s.sli.latencyP50Seconds).toBeGreaterThan(45);
    expect(s.sli.latencyP50Seconds).toBeLessThanOrEqual(60);
    expect(s.sli.latencyP99Seconds).toBeGreaterThan(450);
    expect(s.sli.latencyP99Seconds).toBeLessThanOrEqual(500);
    expect(await page()).toContain('measured: 8 from updated_at');
    expect(cliTable()).toContain('measured (8, updated_at)');
  });

  it('falls back to the proxy when the measurements are older than the window', async () => {
    await sql`update sync_latency set recorded_at = now() - interval '8 days'`.execute(rt.db);
    expect((await api()).sli).toMatchObject({ latencySource: 'proxy', latencyMeasured: 0 });
  });
});
