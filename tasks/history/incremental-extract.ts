import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../core/errors.ts';
import { inHubSnapshot } from '../../hub/snapshot.ts';
import type { Entity } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { InvalidTenantIdError, tenantIdProblem } from '../../hub/tenant-id.ts';
import {
  compressor,
  EXTENSION,
  extractEntity,
  extractInSnapshot,
  extractScope,
  type ExtractOptions,
  type ExtractResult,
  type DeleteCadence,
  type StagedEntity,
  type Watermark,
} from './extract.ts';
import { inScope, scopeLabel } from './layout.ts';
import { keyFields } from './incremental-sql.ts';
import { quote } from './rules.ts';
import { PIPE_BUFFER } from './scanner.ts';

/*
 * The incremental extract: of one tenant, only the rows written since a snapshot already
 * applied to the scope (the watermark), with the scope's row count in the hub and, for the
 * 'every-run' delete cadence, its keys (keys only) to find deletes by.
 *
 * The watermark is the hub's own snapshot, not a time: `pg_current_snapshot()` taken by the
 * earlier extract's transaction and kept in the warehouse's ledger with its load. A row is
 * extracted when the transaction that wrote its current version (the tuple's xmin) is not
 * older than that snapshot's xmin, the oldest transaction still running when it was taken.
 *
 * Why that misses nothing: a row version the earlier snapshot could not see was written by a
 * transaction that had not committed when the snapshot was taken: one running then (listed in
 * xip, so at or above xmin), or one that started after (at or above xmax, above xmin). A
 * savepoint's subtransaction has a larger id than its top transaction, so it is above xmin as
 * well. (`pg_visible_in_snapshot` is not used: the exported snapshot lists no subtransactions,
 * so a row written under a savepoint by a transaction open across the cut would read as
 * visible and be missed.) What is above xmin but was visible (committed in the snapshot's
 * in-flight range) is extracted again: the load compares hashes, so it changes nothing; how
 * many such rows there are is bounded by the longest transaction running at the cut.
 *
 * xmin is a 32-bit id; the snapshot's are 64-bit (epoch and id). The test is PostgreSQL's
 * age(): the distance, as an int4, from the transaction's stable reference R (the next id when
 * first asked, at or after this snapshot's xmax) back to a row's xmin, and back to the
 * watermark's xmin W (its low 32 bits): a row is taken when 0 <= age(xmin) <= age(W). That is
 * exact for every row less than 2^31 transactions old, which every row at or above W is as long
 * as the distance d from W to this snapshot stays under 2^30 (the rest of the int4 leaves room
 * for transactions begun between the snapshot and the scan). A frozen row older than 2^31 reads
 * as a negative age and is left out, rightly; one older than 2^32 may alias into the range and be
 * extracted again, harmlessly. It is a C function on the tuple's header, about twice as fast as
 * comparing the id through its text. When d reaches 2^30, or the hub's ids went backwards (the
 * hub restored from a backup), no bound holds and the scope is extracted whole instead.
 */

const XID_SPACE = 2n ** 32n;
const AGE_LIMIT = 2n ** 30n;

/** The condition on `t` that selects the rows written since `since` (a pg_snapshot text), seen from `current`; null when none bounds them. */
export function changedSince(since: string, current: string): string | null {
  const parse = (snap: string) => {
    const m = /^(\d+):(\d+):/.exec(snap);
    if (!m) throw new PermanentError(`'${snap}' is not a PostgreSQL snapshot (xmin:xmax:xip)`);
    return { xmin: BigInt(m[1]!), xmax: BigInt(m[2]!) };
  };
  const from = parse(since).xmin;
  const n = parse(current).xmax;
  if (from > n || n - from >= AGE_LIMIT) return null;
  return `age(t.xmin) between 0 and age('${from % XID_SPACE}'::xid)`;
}

/** Counts the lines going through. */
class LineCounter extends Transform {
  lines = 0;
  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    for (let i = chunk.indexOf(10); i >= 0; i = chunk.indexOf(10, i + 1)) this.lines++;
    done(null, chunk);
  }
}

/** Streams the scope's keys (the key fields, without the tenant: it is the scope's) to a file beside the changes. */
async function copyKeys(client: pg.PoolClient, opts: ExtractOptions, entity: Entity): Promise<{ file: string; count: number }> {
  const compression = opts.compression ?? 'gzip';
  const file = path.join(opts.dir, `${entity.name}.keys${EXTENSION[compression]}`);
  const columns = keyFields(entity).map((f) => `t.${ident(f.column)}`);
  const select = `select ${columns.join(', ')} from ${tableName(opts.schema, entity)} t where t.${ident(entity.tenantColumn!)} = ${quote(opts.scope!)}`;
  const counter = new LineCounter({ highWaterMark: PIPE_BUFFER });
  try {
    await pipeline(
      [client.query(copyTo(`copy (${select}) to stdout`)), counter, ...compressor(compression), createWriteStream(`${file}.partial`, { mode: 0o600 })],
      {
        signal: opts.signal,
      },
    );
  } catch (err) {
    await rm(`${file}.partial`, { force: true });
    throw err;
  }
  await rename(`${file}.partial`, file);
  return { file, count: counter.lines };
}

export interface IncrementalExtractOptions extends ExtractOptions {
  /** The scope's last applied snapshot; null extracts the scope whole (its first load). */
  since: Watermark | null;
  /** Default 'every-run'. */
  deletes?: DeleteCadence;
}

/** The scope's rows in the hub, in the extract's snapshot: an index-only count, no values read. */
async function hubCount(client: pg.PoolClient, opts: ExtractOptions, entity: Entity): Promise<number> {
  const { rows } = await client.query<{ n: string }>(
    `select count(*) as n from ${tableName(opts.schema, entity)} t where t.${ident(entity.tenantColumn!)} = ${quote(opts.scope!)}`,
  );
  return Number(rows[0]?.n ?? 0);
}

/**
 * Extracts what changed in one scope since `since`, in one REPEATABLE READ snapshot like the
 * full extract, staged in the same files (the changed rows, hashed and checked against the
 * record contract) with the scope's keys beside them. Without a usable watermark, and for the
 * global scope (reference data, a few rows, and the check for rows of no tenant, which needs
 * them all), the scope's full snapshot: its result has no `since`.
 */
export async function extractChanges(opts: IncrementalExtractOptions): Promise<ExtractResult> {
  if (opts.scope === null || opts.since === null) return extractScope(opts);
  const problem = tenantIdProblem(opts.scope);
  if (problem) throw new InvalidTenantIdError(`extract of tenant ${JSON.stringify(opts.scope)}: ${problem}; its rows are rejected by the global scope`);
  const since = opts.since;
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  try {
    return await inHubSnapshot(opts.hub, async (client, snapshotAt, hubSnapshot) => {
      const changed = changedSince(since.hubSnapshot, hubSnapshot);
      if (changed === null) return extractInSnapshot(client, opts, snapshotAt, hubSnapshot);
      const deletes = opts.deletes ?? 'every-run';
      const entities: StagedEntity[] = [];
      for (const entity of Object.values(opts.entities)) {
        if (!inScope(entity, opts.scope)) continue;
        opts.signal?.throwIfAborted();
        const staged = { ...(await extractEntity(client, opts, entity, changed)), hubCount: await hubCount(client, opts, entity) };
        entities.push(deletes === 'every-run' ? { ...staged, keys: await copyKeys(client, opts, entity) } : staged);
      }
      return { scope: opts.scope, snapshotAt, hubSnapshot, since, deletes, entities };
    });
  } catch (err) {
    throw err instanceof PermanentError
      ? err
      : Object.assign(err as Error, { message: `incremental extract of ${scopeLabel(opts.scope)}: ${(err as Error).message}` });
  }
}
