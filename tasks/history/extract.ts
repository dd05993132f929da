import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { Readable, type Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../core/errors.ts';
import type { HubDb } from '../../hub/db.ts';
import { hubColumns, inHubSnapshot, type HubColumn } from '../../hub/snapshot.ts';
import { columnOf, type Entities, type Entity } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { InvalidTenantIdError, tenantIdProblem } from '../../hub/tenant-id.ts';
import { identityFields, inScope, scopeLabel, snapshotFields, type Scope } from './layout.ts';
import { toCopyText } from '../../transforms/copy-text.ts';
import { reasonOf, VALID } from './rules.ts';
import { PIPE_BUFFER, plan, SnapshotScanner, type Reject } from './scanner.ts';

/**
 * Extract: one tenant's snapshot of every entity, read in a single REPEATABLE READ transaction
 * (so all entities agree with each other and with `snapshotAt`), streamed with COPY into
 * files in the staging area. Rows are never parsed: each line's hash is computed from the bytes
 * COPY sent and written into room the query left for it, so memory stays flat and the extract
 * costs little more than the COPY itself.
 *
 * Every row is checked against the record contract of its entity (rules.ts): a row that breaks
 * it goes to the rejects with the field and the rule, never the scope: extracted = staged +
 * rejected, always. Checks the hub can make cheaply (null, length, enumeration) run in the
 * COPY's query and mark the line; type checks of hub columns looser than the contract run here.
 * The keys of rejected rows are staged beside the snapshot: the load leaves them as they were.
 */

export type { Reject };

export interface StagedEntity {
  entity: string;
  /** Absolute path of the COPY-text file (.tsv, .tsv.gz or .tsv.br); null when nothing was staged. */
  file: string | null;
  extracted: number;
  staged: number;
  rejected: number;
  /** Σ int60(row_hash) over the staged rows, exact, as a decimal string. */
  sum: string;
  bytes: number;
  /**
   * The identity fields of the rejected rows that have a key, staged like the snapshot: keys
   * the load must leave untouched (a reject is unknown today, never deleted). Null when none.
   */
  rejectedKeys: { file: string; count: number } | null;
  /**
   * An incremental extract's: the identity fields of every row the scope holds in the hub
   * (keys only), the set deletes are found against. Absent from a full snapshot.
   */
  keys?: { file: string; count: number };
  /**
   * An incremental extract's: how many rows the scope holds in the hub in the same snapshot
   * (valid or rejected), the figure deletes are counted by before any key set is compared.
   */
  hubCount?: number;
}

/**
 * When an incremental run looks for deletes: 'every-run' stages the scope's key set, compared
 * in the warehouse only when the counts say the hub deleted rows; 'nightly' stages none, and
 * leaves the deletes to the next full snapshot, the reconciliation reporting them as pending.
 */
export type DeleteCadence = 'every-run' | 'nightly';

/** Where an incremental extract starts: a snapshot applied to the scope before (see incremental-extract.ts). */
export interface Watermark {
  snapshotAt: string;
  /** `pg_current_snapshot()` of that extract, as text (xmin:xmax:xip). */
  hubSnapshot: string;
}

export interface ExtractResult {
  scope: Scope;
  /** The snapshot's instant (UTC, µs): what the history says the hub held at this time. */
  snapshotAt: string;
  /** The hub's own description of the snapshot (pg_current_snapshot()): the next incremental extract's watermark. */
  hubSnapshot?: string;
  /** Set on an incremental extract: the watermark it extracted the changes since. Its entities carry `keys`. */
  since?: Watermark;
  /** Set on an incremental extract: when its deletes are looked for. */
  deletes?: DeleteCadence;
  entities: StagedEntity[];
  /** The global scope's: every valid tenant id the hub holds in this snapshot, for the leak check of vanished tenants. */
  hubTenants?: string[];
}

export interface ExtractOptions {
  hub: HubDb;
  schema: string;
  entities: Entities;
  scope: Scope;
  /** Folder for this scope's files; created if missing. */
  dir: string;
  /** Receives rejects in batches, as they are found. */
  onRejects: (rejects: Reject[]) => Promise<void>;
  signal?: AbortSignal;
  /**
   * How staged files are compressed: not at all (the cheapest, for a file read once nearby);
   * Brotli at quality 0, which compresses as well as gzip level 1 at about twice its speed; or
   * gzip, which Snowflake's COPY reads without being told. Default gzip.
   */
  compression?: Compression;
}

export type Compression = 'gzip' | 'brotli' | 'none';
export const EXTENSION: Record<Compression, string> = { gzip: '.tsv.gz', brotli: '.tsv.br', none: '.tsv' };

/** The compression stage, none for plain files. */
export function compressor(compression: Compression): Transform[] {
  if (compression === 'none') return [];
  return [
    compression === 'brotli'
      ? createBrotliCompress({
          chunkSize: 256 * 1024,
          params: { [constants.BROTLI_PARAM_QUALITY]: 0, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT },
        })
      : // Huffman coding only: deflate's cheapest setting.
        createGzip({ level: constants.Z_BEST_SPEED, strategy: constants.Z_HUFFMAN_ONLY, chunkSize: PIPE_BUFFER }),
  ];
}

/** The distinct tenant ids of a table: a skip along its index when one leads with the tenant column. */
async function tenantsOf(client: pg.PoolClient, schema: string, entity: Entity): Promise<string[]> {
  const table = tableName(schema, entity);
  const col = ident(entity.tenantColumn!);
  const { rows: idx } = await client.query<{ indexed: boolean }>(
    `select exists (select 1 from pg_index i join pg_attribute a on a.attrelid = i.indrelid and a.attnum = i.indkey[0]
       where i.indrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) and a.attname = $3) as indexed`,
    [schema, entity.table, entity.tenantColumn],
  );
  const { rows } = await client.query<{ v: string }>(
    idx[0]?.indexed
      ? `with recursive s(v) as (
           (select ${col}::text from ${table} where ${col} is not null order by ${col} limit 1)
           union all
           select (select t.${col}::text from ${table} t where t.${col} > s.v order by t.${col} limit 1) from s where s.v is not null)
         select v from s where v is not null`
      : `select distinct ${col}::text as v from ${table} where ${col} is not null`,
  );
  return rows.map((r) => r.v);
}

/**
 * Every tenant id the hub's tenant-scoped tables hold, each once, sorted, with null first when
 * some row has none: a tenant is a scope as soon as any of its tables has a row, so rows of a
 * tenant whose client row is missing (or carries a broken tenant id) are still extracted.
 */
export async function hubTenantIds(client: pg.PoolClient, schema: string, entities: Entities): Promise<(string | null)[]> {
  const ids = new Set<string>();
  let none = false;
  for (const entity of Object.values(entities)) {
    if (!entity.tenantColumn) continue;
    for (const t of await tenantsOf(client, schema, entity)) ids.add(t);
    if (!none) {
      const { rows } = await client.query<{ x: boolean }>(
        `select exists (select 1 from ${tableName(schema, entity)} where ${ident(entity.tenantColumn)} is null) as x`,
      );
      none = rows[0]?.x ?? false;
    }
  }
  return [...(none ? [null] : []), ...[...ids].sort()];
}

/**
 * Rows of a tenant-scoped entity whose tenant is null or breaks the tenant-id rule: they belong
 * to no tenant's scope, so the global scope reports them, once, each a reject.
 */
async function copyTenantRejects(
  client: pg.PoolClient,
  schema: string,
  entity: Entity,
  columns: Map<string, HubColumn>,
  onRejects: ExtractOptions['onRejects'],
): Promise<number> {
  const col = `t.${ident(entity.tenantColumn!)}`;
  const untenanted = await untenantedWhere(client, schema, entity, columns);
  if (!untenanted) return 0;
  const keys = entity.key.map((f) => `coalesce(t.${ident(columnOf(entity, f))}::text, '')`).join(` || '/' || `);
  const { rows } = await client.query<{ raw: string; tenant: string | null; key: string }>(
    `select (t.*)::text as raw, ${col}::text as tenant, ${keys} as key from ${tableName(schema, entity)} t where ${untenanted.where}`,
    untenanted.params,
  );
  const tenant = snapshotFields(entity).find((f) => f.role === 'tenant')!;
  for (let i = 0; i < rows.length; i += REJECT_BATCH) {
    await onRejects(
      rows.slice(i, i + REJECT_BATCH).map((r) => ({
        entity: entity.name,
        tenant: r.tenant,
        key: r.key,
        field: tenant.name,
        rule: 'tenant' as const,
        reason: reasonOf(tenant, 'tenant', r.tenant),
        raw: r.raw,
      })),
    );
  }
  return rows.length;
}

const REJECT_BATCH = 1000;

/** Where a row's tenant id is null or breaks the tenant-id rule, with the ids that do (query parameter $1). */
async function untenantedWhere(
  client: pg.PoolClient,
  schema: string,
  entity: Entity,
  columns: Map<string, HubColumn>,
): Promise<{ where: string; params: unknown[] } | null> {
  const col = `t.${ident(entity.tenantColumn!)}`;
  const invalid = (await tenantsOf(client, schema, entity)).filter((t) => tenantIdProblem(t) !== null);
  const conditions = [
    ...(columns.get(entity.tenantColumn!)?.nullable ? [`${col} is null`] : []),
    ...(invalid.length ? [`${col}::text = any($1::text[])`] : []),
  ];
  return conditions.length ? { where: conditions.join(' or '), params: invalid.length ? [invalid] : [] } : null;
}

/**
 * The keys of rows with no valid tenant id, as this tenant's identity lines. Such a row belongs
 * to no scope (the global scope rejects it), but the hub still holds the record: should this
 * tenant have a key of that name, it is unknown today, not deleted, like any rejected key. A
 * tenant id the hub lost or broke must not read as the record's deletion.
 */
async function untenantedKeys(client: pg.PoolClient, schema: string, entity: Entity, columns: Map<string, HubColumn>, scope: string): Promise<string[]> {
  const untenanted = await untenantedWhere(client, schema, entity, columns);
  if (!untenanted) return [];
  const keys = identityFields(entity).filter((f) => f.role === 'key');
  const { rows } = await client.query<{ k: (string | null)[] }>(
    `select array[${keys.map((f) => `t.${ident(f.column)}::text`).join(', ')}] as k from ${tableName(schema, entity)} t where ${untenanted.where}`,
    untenanted.params,
  );
  // Only a key the warehouse can hold can have been loaded before.
  const castable = rows.filter((r) => r.k.every((v, i) => v !== null && VALID[keys[i]!.type](v)));
  return castable.map((r) => [scope, ...(r.k as string[])].map(toCopyText).join('\t'));
}

/** Writes the identity fields of rejected rows, one line each, compressed as the snapshot is. */
async function writeRejectedKeys(dir: string, entity: Entity, keys: string[], compression: Compression): Promise<string | null> {
  if (!keys.length) return null;
  const file = path.join(dir, `${entity.name}.rejected-keys${EXTENSION[compression]}`);
  await pipeline([Readable.from([Buffer.from(`${keys.join('\n')}\n`)]), ...compressor(compression), createWriteStream(`${file}.partial`, { mode: 0o600 })]);
  await rename(`${file}.partial`, file);
  return file;
}

/** One entity's rows of the scope; with `changed` (a condition on `t`), only the rows it holds. */
export async function extractEntity(client: pg.PoolClient, opts: ExtractOptions, entity: Entity, changed?: string): Promise<StagedEntity> {
  const columns = await hubColumns(client, opts.schema, entity);
  if (!inScope(entity, opts.scope)) {
    const rejected = await copyTenantRejects(client, opts.schema, entity, columns, opts.onRejects);
    return { entity: entity.name, file: null, extracted: rejected, staged: 0, rejected, sum: '0', bytes: 0, rejectedKeys: null };
  }
  const p = plan(entity, columns, opts.schema, opts.scope, changed);
  const scanner = new SnapshotScanner(entity, opts.scope, p, opts.onRejects);
  const compression = opts.compression ?? 'gzip';
  const file = path.join(opts.dir, `${entity.name}${EXTENSION[compression]}`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { highWaterMark: PIPE_BUFFER, mode: 0o600 });
  try {
    await pipeline([client.query(copyTo(`copy (${p.select}) to stdout`)), scanner, ...compressor(compression), out], { signal: opts.signal });
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, file);
  const rejectedKeys =
    opts.scope === null
      ? scanner.rejectedKeys
      : [...new Set([...scanner.rejectedKeys, ...(await untenantedKeys(client, opts.schema, entity, columns, opts.scope))])];
  const keysFile = await writeRejectedKeys(opts.dir, entity, rejectedKeys, compression);
  return {
    entity: entity.name,
    file,
    extracted: scanner.extracted,
    staged: scanner.checksum.count,
    rejected: scanner.rejected,
    sum: scanner.checksum.sum,
    bytes: out.bytesWritten,
    rejectedKeys: keysFile ? { file: keysFile, count: rejectedKeys.length } : null,
  };
}

/**
 * Extracts one scope. The global scope (null) takes the reference data and reports rows of
 * tenant-scoped entities whose tenant is null or not a valid tenant id.
 */
export async function extractScope(opts: ExtractOptions): Promise<ExtractResult> {
  const problem = opts.scope === null ? null : tenantIdProblem(opts.scope);
  // Its rows are the global scope's rejects; nothing of it is staged, and no folder is named after it.
  if (problem) throw new InvalidTenantIdError(`extract of tenant ${JSON.stringify(opts.scope)}: ${problem}; its rows are rejected by the global scope`);
  await mkdir(opts.dir, { recursive: true, mode: 0o700 });
  try {
    return await inHubSnapshot(opts.hub, (client, snapshotAt, hubSnapshot) => extractInSnapshot(client, opts, snapshotAt, hubSnapshot));
  } catch (err) {
    throw err instanceof PermanentError ? err : Object.assign(err as Error, { message: `extract of ${scopeLabel(opts.scope)}: ${(err as Error).message}` });
  }
}

/** The full snapshot of one scope, on a client already in the snapshot's transaction. */
export async function extractInSnapshot(client: pg.PoolClient, opts: ExtractOptions, snapshotAt: string, hubSnapshot: string): Promise<ExtractResult> {
  const entities: StagedEntity[] = [];
  for (const entity of Object.values(opts.entities)) {
    if (!inScope(entity, opts.scope) && !(opts.scope === null && entity.tenantColumn)) continue;
    opts.signal?.throwIfAborted();
    entities.push(await extractEntity(client, opts, entity));
  }
  if (opts.scope !== null) return { scope: opts.scope, snapshotAt, hubSnapshot, entities };
  const hubTenants = (await hubTenantIds(client, opts.schema, opts.entities)).filter((t): t is string => tenantIdProblem(t) === null);
  return { scope: opts.scope, snapshotAt, hubSnapshot, entities, hubTenants };
}
