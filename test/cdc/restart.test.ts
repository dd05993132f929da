import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { startConsumer, sleep, superviseConsumer } from './consumer.ts';
import { asOfDifferences, auditedTransactions, historyAsOf, hubRows, installAudit, replay, sinkChanges, startWriters, streamedTransactions } from './load.ts';
import { startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
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

describe('hubflow cdc run across restarts of the hub', () => {
  it('loses nothing and applies nothing twice when PostgreSQL restarts under the stream, twice', async () => {
    const setup = hubflow(env, 'cdc', 'setup', '--json');
    expect(setup.status, setup.stderr).toBe(0);
    let consumer = await startConsumer(env);
    const exits: (number | null)[] = [];
    for (let round = 0; round < 2; round++) {
      // A burst of commits, then the server goes down while the consumer is still applying it.
      const writers = await startWriters(pgs.url, 0);
      await sleep(1500);
      await writers.stop();
      await pgs.restart();
      // The stream broke under the consumer: it exits with an error, and the supervisor starts it again.
      exits.push(await consumer.exited);
      consumer = await superviseConsumer(env);
    }
    const writers = await startWriters(pgs.url, 0);
    await sleep(1000);
    await writers.stop();

    const audited = await auditedTransactions(pgs.url);
    const deadline = Date.now() + 60_000;
    while (streamedTransactions(await sinkChanges(wh)).byXid.size < audited.size && Date.now() < deadline) await sleep(200);
    consumer.child.kill('SIGTERM');
    expect(await consumer.exited).toBe(0);

    expect(exits.every((code) => code !== 0)).toBe(true);
    const changes = await sinkChanges(wh);
    const streamed = streamedTransactions(changes);
    expect(audited.size).toBeGreaterThan(50);
    expect(streamed.doubled).toEqual([]);
    expect(Object.fromEntries(streamed.byXid)).toEqual(Object.fromEntries(audited));
    const { state, problems } = replay(changes);
    expect(problems).toEqual([]);
    const hub = await hubRows(pgs.url);
    expect(state).toEqual(hub);
    expect(await historyAsOf(pgs.url, null)).toEqual(hub);
    expect(await asOfDifferences(wh, pgs.url, changes)).toEqual([]);
  }, 240_000);
});
