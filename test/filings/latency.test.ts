import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { measureIntegrations } from '../../server/engine/integrations.ts';
import { listOutbox } from '../../tasks/filings/outbox.ts';
import { taskStates } from '../support.ts';
import { filingHarness, runCycle, type FilingHarness } from './support.ts';

/**
 * Each delivered filing records its latency: from the data cut (the hub snapshot it reports) to
 * the moment its manifest was in the outbox. The registry's latency for the filing DAG is then
 * measured, not the run-end proxy.
 */

let h: FilingHarness;
let runId: number;
let started: Date;
let ended: Date;

beforeAll(async () => {
  h = await filingHarness();
  started = new Date();
  const run = await runCycle(h, '2026-01-02', { jurisdiction: 'gb-rti-fps', period: '2025-26-M09' });
  ended = new Date();
  expect(run.state, JSON.stringify(await taskStates(h.rt, run.id))).toBe('success');
  runId = run.id;
}, 90_000);

afterAll(async () => {
  await h?.close();
});

describe('sync latency of filings', () => {
  it('records one span per delivered filing, from its hub snapshot to its delivery', async () => {
    const { filings } = await listOutbox(h.outbox);
    expect(filings.length).toBeGreaterThan(0);
    const rows = await h.rt.db.selectFrom('sync_latency').selectAll().where('run_id', '=', runId).orderBy('scope').execute();
    expect(rows.map((r) => [r.kind, r.source, r.entity, r.task_id, r.dag_id])).toEqual(
      filings.map(() => ['filing', 'data_cut', 'gb-rti-fps', 'deliver', 'filing-cycle']),
    );
    expect(rows.map((r) => r.scope)).toEqual(filings.map((f) => path.basename(f.folder)).sort());
    for (const r of rows) {
      const filing = filings.find((f) => path.basename(f.folder) === r.scope)!;
      const cut = Date.parse(filing.manifest.hubSnapshotAt);
      // Delivered after the cut and within the run; the one span is count, sum, min and max alike.
      expect(r.visible_at.getTime()).toBeGreaterThan(cut);
      expect(r.visible_at.getTime()).toBeLessThanOrEqual(ended.getTime());
      expect(cut).toBeGreaterThanOrEqual(started.getTime() - 1_000);
      expect(Number(r.count)).toBe(1);
      expect(r.sum_seconds).toBeCloseTo((r.visible_at.getTime() - cut) / 1000, 3);
      expect([r.min_seconds, r.max_seconds]).toEqual([r.sum_seconds, r.sum_seconds]);
    }
  });

  it('gives the registry a measured filing latency', async () => {
    const [status] = await measureIntegrations(h.rt.db, h.rt.dags.dags.values());
    expect(status!.sli).toMatchObject({ latencySource: 'measured', latencyFrom: ['data_cut'] });
    const rows = await h.rt.db.selectFrom('sync_latency').select(['sum_seconds']).where('run_id', '=', runId).execute();
    expect(status!.sli.latencyMeasured).toBe(rows.length);
    const spans = rows.map((r) => r.sum_seconds);
    expect(status!.sli.latencyP99Seconds!).toBeLessThanOrEqual(Math.max(...spans) + 1e-9);
    expect(status!.sli.latencyP50Seconds!).toBeGreaterThanOrEqual(Math.min(...spans) - 1e-9);
  });
});
