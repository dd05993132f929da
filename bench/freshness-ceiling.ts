import { changeLogRows, writeChangeLog } from '../cdc/change-log.ts';
import { HistoryApplier, type Timed } from '../cdc/history.ts';
import type { CdcChange } from '../cdc/sink.ts';
import { columnOf, HUB_ENTITIES } from '../hub/entities.ts';
import { openPostgresWarehouse } from '../warehouse/postgres/dialect.ts';

/**
 * The warehouse's own ceiling for CDC's apply: batches of updates to random keys, planned
 * beforehand, written as the sink writes them (the change log's COPY, then
 * `HistoryApplier.write`: the COPY into the temporary table, dropping repeats, closing current
 * rows, inserting versions) in one session with nothing else running: no decoding, no consumer
 * (each batch is rolled back, so history is left as it was). The stream applies batches one at
 * a time in commit order, in one session, so it can reach no more than this.
 */

const ENTITY = HUB_ENTITIES.workers!;

export interface Ceiling {
  batches: number;
  changesPerBatch: number;
  msPerBatch: number[];
  changesPerSecond: number;
  /** The fastest batch's rate. */
  bestChangesPerSecond: number;
}

export async function warehouseCeiling(url: string, schema: string, batches = 5, size = 5_000): Promise<Ceiling> {
  const wh = openPostgresWarehouse(url, schema);
  const applier = new HistoryApplier(wh, HUB_ENTITIES);
  const fields = Object.keys(ENTITY.columns);
  const ms: number[] = [];
  try {
    for (let b = 0; b < batches; b++) {
      ms.push(
        await wh.session(async (s) => {
          const temps = await applier.createTemps(s, [ENTITY.name]);
          await s.query('begin');
          try {
            // Current rows as the stream decodes them (PostgreSQL's text form of each value), at
            // random over the whole table, as a backlog's keys fall.
            const rows = await s.query<Record<string, string | null>>(
              `select tenant_id, ${fields.map((f) => `${columnOf(ENTITY, f)}::text as ${f}`).join(', ')},
                      to_char(source_updated_at at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS.US') || '+00' as hubflow_updated_at
               from ${wh.table(`${ENTITY.name}_history`)} where is_current and not is_deleted order by random() limit ${size}`,
            );
            const at = new Date(Date.now() + 86_400_000 * (b + 1)).toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');
            const timed: Timed[] = rows.map(({ tenant_id: tenant, hubflow_updated_at: updatedAt, ...after }, seq) => {
              const change: CdcChange = {
                entity: ENTITY.name,
                op: 'update',
                tenant: tenant ?? null,
                key: Object.fromEntries(ENTITY.key.map((k) => [k, after[k] ?? null])),
                before: null,
                after: { ...after, city: `${after.city ?? ''}~` },
                updatedAt: updatedAt ?? null,
                seq,
              };
              return { change, at };
            });
            const planned = applier.plan(ENTITY.name, timed);
            const log = changeLogRows('ceiling', [{ commitLsn: 0n, xid: null, commitTs: at, changes: timed.map((t) => t.change) }]);
            const started = performance.now();
            await writeChangeLog(s, wh, log);
            await applier.write(s, temps.get(ENTITY.name)!, planned);
            return performance.now() - started;
          } finally {
            await s.query('rollback');
            await applier.cleanup(s, temps);
          }
        }),
      );
    }
  } finally {
    await wh.close();
  }
  const total = ms.reduce((a, b) => a + b, 0);
  return {
    batches,
    changesPerBatch: size,
    msPerBatch: ms.map(Math.round),
    changesPerSecond: Math.round((batches * size) / (total / 1000)),
    bestChangesPerSecond: Math.round(size / (Math.min(...ms) / 1000)),
  };
}
