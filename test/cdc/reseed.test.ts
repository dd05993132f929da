import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Registry } from 'prom-client';
import { ChangeLogSink } from '../../cdc/change-log.ts';
import { runDoctor } from '../../cdc/doctor.ts';
import { HistoryApplier } from '../../cdc/history.ts';
import { refreshSlotGauges, SlotMonitor, slotGauges, type SlotAlert } from '../../cdc/monitor.ts';
import { openPlain } from '../../cdc/replication.ts';
import { setupCdc } from '../../cdc/setup.ts';
import { streamChanges } from '../../cdc/stream.ts';
import { createLogger } from '../../core/log.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { ensureSchema } from '../../tasks/history/apply.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { historyAsOf, hubRows } from './load.ts';
import { execSql, startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
import { HUB_SCHEMA, seedDemoHub, sourceOf } from './support.ts';

const log = createLogger('silent');
let pgs: PrivatePostgres;
let wh: Warehouse;

beforeAll(async () => {
  // A cap of one WAL segment: a slot nobody reads is invalidated after a few segments of writes.
  pgs = await startPrivatePostgres({ wal_level: 'logical', max_slot_wal_keep_size: '16MB', wal_keep_size: '0' });
  await seedDemoHub(pgs.url, { workers: 120, fullIdentity: true });
  await execSql(pgs.url, 'create table public.filler (n int, pad text)');
  wh = openPostgresWarehouse(pgs.url, 'wh');
  await ensureSchema(wh, HUB_ENTITIES);
});
afterAll(async () => {
  await wh?.close();
  await pgs?.stop();
});

/** Writes unrelated WAL, segment by segment, with checkpoints, until the slot is lost. */
async function outrunSlot(slot: string): Promise<void> {
  for (let i = 0; i < 40; i++) {
    await execSql(pgs.url, `insert into public.filler select g, repeat('x', 500) from generate_series(1, 20000) g`, 'select pg_switch_wal()', 'checkpoint');
    const [r] = await execSql(pgs.url, `select wal_status from pg_replication_slots where slot_name = '${slot}'`);
    if (r!.rows[0]?.wal_status === 'lost') return;
  }
  throw new Error('the slot was never invalidated');
}

describe('a lagging and then invalidated slot', () => {
  it('is alerted once past the lag threshold, exported as metrics, refused with a clear error, and re-seeded with its gap deletes as tombstones', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh, { history: new HistoryApplier(wh, HUB_ENTITIES) });
    await setupCdc(source, sink, { log });

    // Lag: changes nobody consumes, past a threshold of 64 kB.
    await execSql(pgs.url, `update ${HUB_SCHEMA}.workers set city = city || '!'`);
    const alerts: SlotAlert[] = [];
    const monitor = new SlotMonitor({ hubUrl: pgs.url, slot: source.slot, lagAlertBytes: 64 * 1024, log, alert: async (a) => void alerts.push(a) });
    const client = await openPlain(pgs.url, 'test');
    try {
      const seen = await monitor.check(client);
      expect(seen?.lagBytes).toBeGreaterThan(64 * 1024);
      await monitor.check(client);
      expect(alerts.map((a) => a.message)).toEqual([
        expect.stringMatching(/^replication slot hubflow_cdc lags [\d.]+ MB behind the hub \(threshold 0\.1 MB\)/),
      ]);

      const registry = new Registry();
      const gauges = slotGauges([registry]);
      await refreshSlotGauges(gauges, pgs.url, log);
      const text = await registry.metrics();
      expect(text).toMatch(/hubflow_cdc_slot_lag_bytes\{slot="hubflow_cdc"\} [1-9]\d+/);
      expect(text).toMatch(/hubflow_cdc_slot_retained_wal_bytes\{slot="hubflow_cdc"\} [1-9]\d+/);
      expect(text).toContain('hubflow_cdc_slot_invalidated{slot="hubflow_cdc"} 0');

      // The gap: deletes while the slot falls behind, then it is lost.
      const [deleted] = await execSql(
        pgs.url,
        `delete from ${HUB_SCHEMA}.workers where worker_id in (select worker_id from ${HUB_SCHEMA}.workers order by worker_id limit 7) returning tenant_id, worker_id`,
      );
      await outrunSlot(source.slot);
      await monitor.check(client);
      expect(alerts.at(-1)?.message).toMatch(/invalidated \(wal_status lost\).*hubflow cdc setup --reseed/);
      await monitor.check(client);
      expect(alerts).toHaveLength(2);
      await refreshSlotGauges(gauges, pgs.url, log);
      expect(await registry.metrics()).toContain('hubflow_cdc_slot_invalidated{slot="hubflow_cdc"} 1');

      await expect(streamChanges({ source, sink, log, heartbeatMs: 0 })).rejects.toThrow(
        /replication slot hubflow_cdc is invalidated \(wal_status lost\).*hubflow cdc setup --reseed/,
      );
      const doctor = await runDoctor(source);
      expect(doctor.checks.find((c) => c.check === 'slot hubflow_cdc')).toMatchObject({
        status: 'fail',
        fix: 'hubflow cdc setup --reseed (a new slot and a new initial cut)',
      });

      // The re-seed: a new slot and cut; the keys deleted in the gap are closed as deleted at the cut.
      const reseed = await setupCdc(source, sink, { log, reseed: true });
      expect(reseed.tombstones).toBe(7);
      expect(await historyAsOf(pgs.url, null)).toEqual(await hubRows(pgs.url));
      const tombstones = await wh.session((s) =>
        s.query<{ tenant_id: string; worker_id: string; valid_from: Date }>(
          `select tenant_id, worker_id, valid_from from wh.workers_history where is_current and is_deleted order by worker_id`,
        ),
      );
      expect(tombstones.map((t) => `${t.tenant_id}/${t.worker_id}`)).toEqual(deleted!.rows.map((r) => `${r.tenant_id}/${r.worker_id}`).sort());
      expect(tombstones.every((t) => t.valid_from.toISOString().slice(0, 19) === reseed.snapshotAt.slice(0, 19))).toBe(true);
      // And the stream goes on from the new slot.
      await execSql(pgs.url, `update ${HUB_SCHEMA}.workers set city = 'After' where worker_id = (select min(worker_id) from ${HUB_SCHEMA}.workers)`);
      const stop = new AbortController();
      const streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 0, batchDelayMs: 50 });
      const deadline = Date.now() + 20_000;
      while (Date.now() < deadline && !JSON.stringify([...(await historyAsOf(pgs.url, null)).values()]).includes('"After"'))
        await new Promise((r) => setTimeout(r, 200));
      stop.abort();
      await streaming;
      expect(await historyAsOf(pgs.url, null)).toEqual(await hubRows(pgs.url));
    } finally {
      await client.end();
    }
  }, 180_000);
});
