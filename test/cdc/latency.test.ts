import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeLogSink } from '../../cdc/change-log.ts';
import { HistoryApplier } from '../../cdc/history.ts';
import type { CdcChange, CdcSink, CdcTransaction } from '../../cdc/sink.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { defineDag, task } from '../../index.ts';
import { measureIntegrations } from '../../server/engine/integrations.ts';
import { measuringSink } from '../../server/engine/sync-latency-cdc.ts';
import { bucketOf } from '../../server/engine/sync-latency.ts';
import { ensureSchema } from '../../tasks/history/apply.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import { TEST_DATABASE_URL, testRuntime, type TestRuntime } from '../support.ts';

/**
 * The CDC stream's latency: each applied change from its WAL commit time to the warehouse commit
 * of the batch, recorded under the integration the stream serves, once even when the server
 * sends a batch again. Transactions are handed to the real sink as the stream would hand them.
 */

const INTEGRATION = 'hub-cdc-to-warehouse';
const dag = defineDag({
  id: 'cdc-watch',
  integration: { name: INTEGRATION, target: 'warehouse', pattern: 'cdc', slo: { latency: { p50: '5m', p99: '30m' } } },
  tasks: { noop: task({ run: () => 'ok' }) },
});

let rt: TestRuntime;
let wh: Warehouse;
let sink: CdcSink;
const whSchema = `wc_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
const SLOT = 'latency_slot';

const currency = (code: string): CdcChange => ({
  entity: 'currencies',
  op: 'insert',
  tenant: null,
  key: { code },
  before: null,
  after: { code, name: `Currency ${code}`, minor_units: '2', symbol: code },
  updatedAt: null,
  seq: 0,
});
const tx = (n: number, secondsAgo: number, codes: string[]): CdcTransaction => ({
  xid: 1000 + n,
  commitLsn: BigInt(1_000_000 + n * 100),
  endLsn: BigInt(1_000_000 + n * 100 + 50),
  commitTs: new Date(Date.now() - secondsAgo * 1000).toISOString().replace('Z', '000Z'),
  changes: codes.map(currency),
});

beforeAll(async () => {
  rt = await testRuntime([dag]);
  wh = openPostgresWarehouse(TEST_DATABASE_URL, whSchema);
  await ensureSchema(wh, HUB_ENTITIES);
  sink = measuringSink(new ChangeLogSink(wh, { history: new HistoryApplier(wh, HUB_ENTITIES) }), rt.db, INTEGRATION);
  await sink.seed({ slot: SLOT, consistentPoint: 1_000_000n, snapshotAt: new Date().toISOString().replace('Z', '000Z') }, (async function* () {})());
}, 60_000);

afterAll(async () => {
  await wh?.close();
  if (rt) await sql`drop schema if exists ${sql.id(whSchema)} cascade`.execute(rt.db);
  await rt?.close();
});

describe('sync latency of the CDC stream', () => {
  it('measures each change from its WAL commit to the warehouse commit, once, under its integration', async () => {
    const batch = [tx(1, 42, ['XAA', 'XAB']), tx(2, 400, ['XAC'])];
    await sink.apply(SLOT, batch);
    // Sent again after a restart: the sink skips it, and so does the measurement.
    await sink.apply(SLOT, batch);
    const rows = await rt.db.selectFrom('sync_latency').selectAll().execute();
    expect(rows).toHaveLength(1);
    const [row] = rows;
    expect(row).toMatchObject({ dag_id: null, run_id: null, integration: INTEGRATION, kind: 'version', entity: 'currencies', source: 'wal_commit' });
    expect(Number(row!.count)).toBe(3);
    expect(row!.min_seconds).toBeGreaterThanOrEqual(42);
    expect(row!.min_seconds).toBeLessThan(52);
    expect(row!.max_seconds).toBeGreaterThanOrEqual(400);
    expect(row!.max_seconds).toBeLessThan(410);
    expect(row!.buckets.map(Number)[bucketOf(row!.min_seconds)]).toBe(2);
    expect(row!.buckets.map(Number)[bucketOf(row!.max_seconds)]).toBe(1);
  });

  it('gives the registry the stream latency, measured from WAL commit times', async () => {
    const [status] = await measureIntegrations(rt.db, rt.dags.dags.values());
    expect(status!.sli).toMatchObject({ latencySource: 'measured', latencyMeasured: 3, latencyFrom: ['wal_commit'] });
    expect(status!.sli.latencyP50Seconds!).toBeGreaterThanOrEqual(42);
    expect(status!.sli.latencyP50Seconds!).toBeLessThanOrEqual(60);
    // 400 s is past the 5 minute p50 objective only for p99, whose objective is 30 minutes: both met.
    expect(status!.slos.filter((c) => c.slo.startsWith('latency')).map((c) => c.met)).toEqual([true, true]);
  });
});
