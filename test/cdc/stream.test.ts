import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeLogSink } from '../../cdc/change-log.ts';
import type { CdcSink } from '../../cdc/sink.ts';
import { setupCdc } from '../../cdc/setup.ts';
import { streamChanges } from '../../cdc/stream.ts';
import { parseLsn } from '../../cdc/lsn.ts';
import { createLogger } from '../../core/log.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { auditedTransactions, hubRows, installAudit, replay, sinkChanges, startWriters, streamedTransactions } from './load.ts';
import { execSql, startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
import { seedDemoHub, sourceOf } from './support.ts';

const log = createLogger('silent');
let pgs: PrivatePostgres;
let wh: Warehouse;

beforeAll(async () => {
  pgs = await startPrivatePostgres({ wal_level: 'logical', max_slot_wal_keep_size: '64MB' });
  await seedDemoHub(pgs.url, { workers: 200, fullIdentity: true });
  await installAudit(pgs.url);
  wh = openPostgresWarehouse(pgs.url, 'wh');
});
afterAll(async () => {
  await wh?.close();
  await pgs?.stop();
});

async function until(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const currentLsn = async () => parseLsn((await execSql(pgs.url, 'select pg_current_wal_lsn()::text as l'))[0]!.rows[0].l as string);
const slotRow = async (slot: string) =>
  (await execSql(pgs.url, `select confirmed_flush_lsn::text as confirmed, wal_status, active from pg_replication_slots where slot_name = '${slot}'`))[0]!
    .rows[0] as { confirmed: string; wal_status: string; active: boolean } | undefined;

describe('cdc setup and stream', () => {
  it('meets the initial cut taken under concurrent writes with the stream: no gap, no overlap, every change once in commit order', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh);
    const writers = await startWriters(pgs.url);
    const stop = new AbortController();
    let streaming: Promise<unknown> | undefined;
    try {
      await new Promise((r) => setTimeout(r, 300));
      const result = await setupCdc(source, sink, { log });
      expect(result.publication).toBe('created');
      expect(result.rows).toBeGreaterThan(200);
      streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 0 });
      await new Promise((r) => setTimeout(r, 1500));
    } finally {
      await writers.stop();
    }
    const hub = JSON.stringify([...(await hubRows(pgs.url))].sort());
    // Caught up while it streams: batches are applied as they fill or age, not at the stop.
    await until('the sink to catch up', async () => JSON.stringify([...replay(await sinkChanges(wh)).state].sort()) === hub);
    stop.abort();
    const stats = (await streaming) as { transactions: number; changes: number };
    expect(stats.transactions).toBeGreaterThan(10);

    const changes = await sinkChanges(wh);
    const { state, problems } = replay(changes);
    expect(problems).toEqual([]);
    expect(state).toEqual(await hubRows(pgs.url));
    // Commit order: the record's order is the commit LSN's, and each transaction's changes are as the hub made them.
    const streamed = streamedTransactions(changes);
    expect(streamed.doubled).toEqual([]);
    const audited = await auditedTransactions(pgs.url);
    for (const [xid, ops] of streamed.byXid) expect(ops, `transaction ${xid}`).toEqual(audited.get(xid));
    expect(changes.filter((c) => c.op !== 'snapshot').every((c) => c.commit_lsn >= changes[0]!.commit_lsn)).toBe(true);
  });

  it('refuses to set up again over a slot whose cut was applied, unless asked to re-seed', async () => {
    await expect(setupCdc(sourceOf(pgs.url), new ChangeLogSink(wh), { log })).rejects.toThrow(/exists and its initial cut was applied .* --reseed/);
  });

  it('moves an idle slot on with the server position, so WAL of other tables is freed', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh);
    const stop = new AbortController();
    const streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 100, statusIntervalMs: 200 });
    try {
      await execSql(pgs.url, 'create table public.unrelated (x int)', 'insert into public.unrelated select generate_series(1, 1000)');
      const after = await currentLsn();
      const applied = await sink.appliedLsn('hubflow_cdc');
      await until('the slot to pass the unrelated WAL', async () => parseLsn((await slotRow('hubflow_cdc'))!.confirmed) >= after);
      // Nothing of the hub changed, so nothing was applied: the slot moved on the keepalive alone.
      expect(await sink.appliedLsn('hubflow_cdc')).toBe(applied);
    } finally {
      stop.abort();
      await streaming;
    }
  });

  it('applies nothing twice after a crash between the durable apply and the acknowledgement', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh);
    const crashing: CdcSink = {
      appliedLsn: (slot) => sink.appliedLsn(slot),
      seed: (cut, rows) => sink.seed(cut, rows),
      async apply(slot, batch) {
        await sink.apply(slot, batch);
        throw new Error('died after the apply, before the acknowledgement');
      },
    };
    await execSql(pgs.url, ...[1, 2, 3].map((n) => `update hub.workers set city = 'Crash ${n}' where worker_id = (select min(worker_id) from hub.workers)`));
    await expect(streamChanges({ source, sink: crashing, log, heartbeatMs: 0 })).rejects.toThrow(/before the acknowledgement/);
    const before = (await sinkChanges(wh)).length;
    // The three are in the warehouse, the slot was never told: the window a crash leaves.
    expect(parseLsn((await slotRow('hubflow_cdc'))!.confirmed)).toBeLessThan((await sink.appliedLsn('hubflow_cdc'))!);
    const stop = new AbortController();
    const streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 0 });
    await new Promise((r) => setTimeout(r, 1000));
    stop.abort();
    const stats = await streaming;
    // Resumed from the warehouse's ledger, not the slot's older position: none of the three is applied again.
    expect(stats.transactions).toBe(0);
    expect((await sinkChanges(wh)).length).toBe(before);
    expect(streamedTransactions(await sinkChanges(wh)).doubled).toEqual([]);
  });

  it('delivers, after a restart, a transaction whose COMMIT starts exactly where the last applied one ends', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh);
    // A and B both write, then commit back to back: B's COMMIT record starts at A's end.
    const a = new pg.Client({ connectionString: pgs.url });
    const b = new pg.Client({ connectionString: pgs.url });
    await Promise.all([a.connect(), b.connect()]);
    try {
      await a.query('begin');
      const { rows } = await a.query<{ xid: string }>(
        `update hub.workers set city = 'Adjacent A' where worker_id = (select min(worker_id) from hub.workers) returning pg_current_xact_id()::text as xid`,
      );
      await b.query('begin');
      await b.query(`update hub.workers set city = 'Adjacent B' where worker_id = (select max(worker_id) from hub.workers)`);
      await a.query('commit');
      await b.query('commit');
      const xidA = Number(rows[0]!.xid);
      // A sink that applies A (which is then acknowledged) and dies applying B.
      let appliedA = false;
      const uptoA: CdcSink = {
        appliedLsn: (slot) => sink.appliedLsn(slot),
        seed: (cut, r) => sink.seed(cut, r),
        async apply(slot, batch) {
          if (appliedA) throw new Error('died applying B');
          const at = batch.findIndex((tx) => tx.xid === xidA);
          await sink.apply(slot, at < 0 ? batch : batch.slice(0, at + 1));
          appliedA = at >= 0;
          if (at >= 0 && at < batch.length - 1) throw new Error('died applying B');
        },
      };
      await expect(streamChanges({ source, sink: uptoA, log, heartbeatMs: 0, batchChanges: 1 })).rejects.toThrow(/died applying B/);
      const endOfA = (await sink.appliedLsn('hubflow_cdc'))!;
      // Acknowledged with A's end, exactly (when A was its own batch; never beyond it).
      expect(parseLsn((await slotRow('hubflow_cdc'))!.confirmed)).toBe(endOfA);
      const stop = new AbortController();
      const streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 0 });
      await until('B in the warehouse', async () => (await sinkChanges(wh)).some((c) => c.after_row?.includes('Adjacent B')));
      stop.abort();
      await streaming;
      const bChange = (await sinkChanges(wh)).find((c) => c.after_row?.includes('Adjacent B'))!;
      // Reporting end_lsn + 1 (as the library does) would have skipped B for good.
      expect(BigInt(bChange.commit_lsn)).toBe(endOfA);
    } finally {
      await Promise.all([a.end(), b.end()]);
    }
  });

  it('says a slot invalidated for falling behind max_slot_wal_keep_size is lost and must be re-seeded', async () => {
    const source = sourceOf(pgs.url, { slot: 'hubflow_lost' });
    const sink = new ChangeLogSink(wh);
    await setupCdc(source, sink, { log });
    // Past the 64 MB cap: WAL segments written and switched, then a checkpoint removes them.
    for (let i = 0; i < 6; i++) await execSql(pgs.url, 'insert into public.unrelated select generate_series(1, 200000)', 'select pg_switch_wal()');
    await execSql(pgs.url, 'checkpoint');
    expect((await slotRow('hubflow_lost'))?.wal_status).toBe('lost');
    await expect(streamChanges({ source, sink, log, heartbeatMs: 0 })).rejects.toThrow(/hubflow_lost is invalidated .* hubflow cdc setup --reseed/);
  });
});
