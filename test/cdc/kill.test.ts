import { type ChildProcess, spawn } from 'node:child_process';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { auditedTransactions, historyAsOf, hubRows, installAudit, replay, sinkChanges, startWriters, streamedTransactions } from './load.ts';
import { startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';
import { hubflow, root, seedDemoHub } from './support.ts';

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

/** `hubflow cdc run` as its own process; resolves once it streams. */
async function startConsumer(): Promise<{ child: ChildProcess; exited: Promise<number | null>; output: () => string }> {
  const child = spawn(process.execPath, [path.join(root, 'bin/hubflow.js'), 'cdc', 'run'], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      output += chunk.toString('utf8');
      if (output.includes('streaming changes')) resolve();
    });
    void exited.then(() => reject(new Error(`the consumer exited before streaming:\n${output}`)));
  });
  return { child, exited, output: () => output };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('hubflow cdc run, killed and restarted', () => {
  it('loses nothing and applies nothing twice across repeated SIGKILLs mid-stream', async () => {
    const setup = hubflow(env, 'cdc', 'setup', '--json');
    expect(setup.status, setup.stderr).toBe(0);
    const writers = await startWriters(pgs.url, 2);
    let kills = 0;
    try {
      for (let i = 0; i < 6; i++) {
        const consumer = await startConsumer();
        await sleep(300 + Math.random() * 1200);
        consumer.child.kill('SIGKILL');
        await consumer.exited;
        kills++;
      }
    } finally {
      await writers.stop();
    }
    const audited = await auditedTransactions(pgs.url);
    const consumer = await startConsumer();
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
  }, 240_000); // a dozen CLI processes (setup, six consumers, the checks), each loading hubflow: slow on a busy machine
});
