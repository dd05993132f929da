import type { CdcSink, CdcTransaction } from '../../cdc/sink.ts';
import type { Store } from '../store/db.ts';
import { histogramOf, recordSyncLatency, type LatencyRecord } from './sync-latency.ts';

/**
 * Sync latency of the CDC stream: per change, from its transaction's commit in the hub (the WAL
 * commit timestamp) to the moment the sink's warehouse transaction had committed (apply
 * returned). One histogram per entity and batch. The commit time is the hub's clock and the
 * visible time this process's: on separate hosts their skew adds to every figure.
 */
export function cdcBatchLatency(batch: readonly CdcTransaction[], visibleAt: Date): LatencyRecord[] {
  const byEntity = new Map<string, number[]>();
  for (const tx of batch) {
    const seconds = (visibleAt.getTime() - Date.parse(tx.commitTs)) / 1000;
    for (const c of tx.changes) {
      const list = byEntity.get(c.entity) ?? byEntity.set(c.entity, []).get(c.entity)!;
      list.push(seconds);
    }
  }
  return [...byEntity].map(([entity, seconds]) => ({ kind: 'version', entity, scope: null, source: 'wal_commit', visibleAt, histogram: histogramOf(seconds) }));
}

/**
 * A sink that records the latency of what it applies under `integration` (the name a DAG's
 * integration declares, so the registry finds it). Transactions the sink had already applied (sent
 * again after a restart) are not measured twice: the same rule the sink uses to skip them.
 */
export function measuringSink(sink: CdcSink, db: Store, integration: string): CdcSink {
  return {
    appliedLsn: (slot) => sink.appliedLsn(slot),
    seed: (cut, rows) => sink.seed(cut, rows),
    ...(sink.prepare ? { prepare: sink.prepare.bind(sink) } : {}),
    async apply(slot, batch) {
      const applied = await sink.appliedLsn(slot);
      await sink.apply(slot, batch);
      const visibleAt = new Date();
      const fresh = batch.filter((tx) => applied === null || tx.commitLsn >= applied);
      await recordSyncLatency(db, { integration }, cdcBatchLatency(fresh, visibleAt));
    },
  };
}
