import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { asOfDifferences, auditedTransactions, historyAsOf, hubRows, installAudit, replay, sinkChanges, startWriters, streamedTransactions } from './load.ts';
import { startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
import { startConsumer, sleep } from './consumer.ts';
import { hubflow, seedDemoHub } from './support.ts';

let pgs: PrivatePostgres;
let wh: Warehouse;
let env: Record<string, string>;

beforeAll(async () => {
  pgs = await startPrivatePostgres({ wal_level: 'logical', max_slot_wal_keep_size: '256MB' });
  await seedDemoHub(pgs.url, { workers: 200, fullIdentity: true });
  await installAudit(pgs.url);
  env = { HUBFLOW_HUB_URL: pgs.url, HUBFLOW_DATABASE_URL: pgs.url, HUBFLOW_WAREHOUSE_SCHEMA: 'wh', HUBFLOW_LOG_LEVEL: 'info' };
  wh = openPostgresWarehouse(pgs.url, 'wh');
});
afterAll(async () => {
  await wh?.close();
  await pgs?.stop();
});

describe('hubflow cdc run, killed and restarted', () => {
  it('loses nothing and applies nothing twice across repeated SIGKILLs mid-stream', async () => {
    const setup = hubflow(env, 'cdc', 'setup', '--json');
    expect(setup.status, setup.stderr).toBe(0);
    const writers = await startWriters(pgs.url, 2);
    let kills = 0;
    try {
      for (let i = 0; i < 6; i++) {
        const consumer = await startConsumer(env);
        await sleep(300 + Math.random() * 1200);
        consumer.child.kill('SIGKILL');
        await consumer.exited;
        kills++;
      }
    } finally {
      await writers.stop();
    }
    const audited = await auditedTransactions(pgs.url);
    const consumer = await startConsumer(env);
    const deadline = Date.now() + 30_000;
    while (streamedTransactions(await sinkChanges(wh)).byXid.size < audited.size && Date.now() < deadline) await sleep(200);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);

    const changes = await sinkChanges(wh);
    const streamed = streamedTransactions(changes);
    expect(kills).toBe(6);
    expect(audited.size).toBeGreaterThan(50);
    expect(streamed.doubled).toEqual([]);
    // Every transaction the hub committed, with its changes in order; no other.
    expect(Object.fromEntries(streamed.byXid)).toEqual(Object.fromEntries(audited));
    const { state, problems } = replay(changes);
    expect(problems).toEqual([]);
    expect(state).toEqual(await hubRows(pgs.url));
    // And the SCD2 history written in the same transactions: its current rows are the hub's.
    expect(await historyAsOf(pgs.url, null)).toEqual(await hubRows(pgs.url));
    // As of sampled commit boundaries too, not only now.
    expect(await asOfDifferences(wh, pgs.url, changes)).toEqual([]);
  }, 240_000); // a dozen CLI processes (setup, six consumers, the checks), each loading hubflow: slow on a busy machine
});
