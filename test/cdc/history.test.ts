import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ChangeLogSink } from '../../cdc/change-log.ts';
import { HistoryApplier } from '../../cdc/history.ts';
import { setupCdc } from '../../cdc/setup.ts';
import { streamChanges } from '../../cdc/stream.ts';
import { createLogger } from '../../core/log.ts';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { ensureSchema } from '../../tasks/history/apply.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { historyAsOf, hubRows, replay, sinkChanges, startWriters } from './load.ts';
import { seedDemoHub, sourceOf } from './support.ts';
import { execSql, startPrivatePostgres, type PrivatePostgres } from './private-pg.ts';

const log = createLogger('silent');
let pgs: PrivatePostgres;
let wh: Warehouse;

beforeAll(async () => {
  pgs = await startPrivatePostgres({ wal_level: 'logical' });
  await seedDemoHub(pgs.url, { workers: 150, fullIdentity: true });
  wh = openPostgresWarehouse(pgs.url, 'wh');
  await ensureSchema(wh, HUB_ENTITIES);
});
afterAll(async () => {
  await wh?.close();
  await pgs?.stop();
});

describe('cdc into the SCD2 history', () => {
  it('makes one version per committed change, valid from its commit time: as of every commit sampled, history is the hub', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh, { history: new HistoryApplier(wh, HUB_ENTITIES) });
    const setup = await setupCdc(source, sink, { log });
    expect(await historyAsOf(pgs.url, null)).toEqual(await hubRows(pgs.url));

    const writers = await startWriters(pgs.url);
    const stop = new AbortController();
    const streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 0 });
    await new Promise((r) => setTimeout(r, 2000));
    await writers.stop();
    const hubAtEnd = await hubRows(pgs.url);
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && JSON.stringify([...(await historyAsOf(pgs.url, null))].sort()) !== JSON.stringify([...hubAtEnd].sort())) {
      await new Promise((r) => setTimeout(r, 200));
    }
    // Caught up while streaming, not at the stop.
    expect(await historyAsOf(pgs.url, null)).toEqual(hubAtEnd);
    stop.abort();
    await streaming;

    // As of sampled commit boundaries: the replay of the change log up to that commit.
    const changes = await sinkChanges(wh);
    const commits = [...new Set(changes.filter((c) => c.op !== 'snapshot').map((c) => c.commit_lsn))];
    expect(commits.length).toBeGreaterThan(20);
    const times = await wh.session((s) =>
      s.query<{ commit_lsn: string; at: string }>(
        `select distinct commit_lsn::text, to_char(commit_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from wh.cdc_changes where op <> 'snapshot'`,
      ),
    );
    const atOf = new Map(times.map((t) => [t.commit_lsn, t.at]));
    const shared = new Set(times.map((t) => t.at).filter((at, i, all) => all.indexOf(at) !== i));
    for (let i = 0; i < commits.length; i += Math.ceil(commits.length / 15)) {
      const at = atOf.get(commits[i]!)!;
      if (shared.has(at)) continue; // two commits in one microsecond: history keeps their sum
      const upTo = changes.filter((c) => c.op === 'snapshot' || BigInt(c.commit_lsn) <= BigInt(commits[i]!));
      expect(await historyAsOf(pgs.url, at), `as of ${at}`).toEqual(replay(upTo).state);
    }
    expect(setup.rows).toBeGreaterThan(150);
  });

  it('writes no version for a change that repeats the current row, and one per commit for a change undone by the next', async () => {
    const source = sourceOf(pgs.url);
    const sink = new ChangeLogSink(wh, { history: new HistoryApplier(wh, HUB_ENTITIES) });
    const [key] = await execSql(pgs.url, `select tenant_id, worker_id, city from hub.workers order by worker_id limit 1`);
    const { tenant_id: tenant, worker_id: worker, city } = key!.rows[0] as { tenant_id: string; worker_id: string; city: string };
    const versions = async () =>
      (
        await wh.session((s) =>
          s.query<{ city: string }>(`select city from wh.workers_history where tenant_id = '${tenant}' and worker_id = '${worker}' order by valid_from`),
        )
      ).map((r) => r.city);
    const before = await versions();
    const where = `where tenant_id = '${tenant}' and worker_id = '${worker}'`;
    await execSql(
      pgs.url,
      `update hub.workers set city = city, updated_at = updated_at ${where}`,
      `update hub.workers set city = 'Elsewhere' ${where}`,
      `update hub.workers set city = '${city}' ${where}`,
    );
    const stop = new AbortController();
    let applied = 0;
    const streaming = streamChanges({ source, sink, log, signal: stop.signal, heartbeatMs: 0, onApplied: (b) => (applied += b.length) });
    const deadline = Date.now() + 20_000;
    while (Date.now() < deadline && applied < 3) await new Promise((r) => setTimeout(r, 100));
    stop.abort();
    await streaming;
    expect(applied).toBe(3);
    // The first update changes nothing history tracks; the other two are a version each, in one batch.
    expect(await versions()).toEqual([...before, 'Elsewhere', city]);
  });
});
