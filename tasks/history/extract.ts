import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { hash as sha256Of } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../server/errors.ts';
import { inHubSnapshot, type HubDb } from '../../server/hub/db.ts';
import type { ColumnType, Entities, Entity } from '../../server/hub/entities.ts';
import { ident, tableName } from '../../server/hub/schema.ts';
import { Checksum } from '../../transforms/row-hash.ts';
import { identityFields, inScope, scopeLabel, snapshotFields, type Field, type Scope } from './layout.ts';

/**
 * Extract: one tenant's snapshot of every entity, read in a single REPEATABLE READ transaction
 * (so all entities agree with each other and with `snapshotAt`), streamed with COPY into
 * files in the staging area. Rows are never parsed: each line's hash is computed from the bytes
 * COPY sent and written into room the query left for it, so memory stays flat and the extract
 * costs little more than the COPY itself.
 *
 * Rows that cannot be loaded (no tenant, no key, a value that breaks its configured type) go
 * to the rejects with their reason: extracted = staged + rejected, always.
 */

export interface Reject {
  entity: string;
  tenant: string | null;
  /** The key as read, '' when missing. */
  key: string;
  field: string;
  reason: string;
  /** The row as the hub holds it (COPY text, tab separated). */
  raw: string;
}

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
}

export interface ExtractResult {
  scope: Scope;
  /** The snapshot's instant (UTC, µs): what the history says the hub held at this time. */
  snapshotAt: string;
  entities: StagedEntity[];
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
function compressor(compression: Compression): Transform[] {
  if (compression === 'none') return [];
  return [compression === 'brotli'
    ? createBrotliCompress({ chunkSize: 256 * 1024, params: { [constants.BROTLI_PARAM_QUALITY]: 0, [constants.BROTLI_PARAM_MODE]: constants.BROTLI_MODE_TEXT } })
    : // Huffman coding only: deflate's cheapest setting.
      createGzip({ level: constants.Z_BEST_SPEED, strategy: constants.Z_HUFFMAN_ONLY, chunkSize: PIPE_BUFFER })];
}

interface HubColumn {
  type: string;
  nullable: boolean;
}

async function hubColumns(client: pg.PoolClient, schema: string, entity: Entity): Promise<Map<string, HubColumn>> {
  // The catalog itself: information_schema costs tens of milliseconds a call, per tenant and entity.
  const { rows } = await client.query<{ name: string; type: string; nullable: boolean }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, not a.attnotnull as nullable
     from pg_attribute a where a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) and a.attnum > 0 and not a.attisdropped`,
    [schema, entity.table],
  );
  if (!rows.length) throw new PermanentError(`hub table ${schema}.${entity.table} (entity '${entity.name}') does not exist`);
  return new Map(rows.map((r) => [r.name, { type: r.type, nullable: r.nullable }]));
}

/** Hub column types (as `format_type` writes them) that hold the configured type's values. */
const COMPATIBLE: Record<ColumnType, RegExp> = {
  text: /^(text|character varying|character|uuid|citext)\b/,
  integer: /^(smallint|integer|bigint)$/,
  numeric: /^(numeric|smallint|integer|bigint)\b/,
  date: /^date$/,
  timestamptz: /^timestamp(\(\d\))? with time zone$/,
  boolean: /^boolean$/,
};

/** A value's check for a hub column whose type is looser than the configured one (text holding dates, say). */
const VALID: Record<ColumnType, (v: string) => boolean> = {
  text: () => true,
  integer: (v) => /^-?\d{1,10}$/.test(v) && Math.abs(Number(v)) <= 2_147_483_647,
  numeric: (v) => /^-?\d{1,12}(\.\d{1,2})?$/.test(v),
  date: (v) => /^\d{4}-\d{2}-\d{2}$/.test(v) && !Number.isNaN(Date.parse(`${v}T00:00:00Z`)) && new Date(`${v}T00:00:00Z`).toISOString().startsWith(v),
  timestamptz: (v) => !Number.isNaN(Date.parse(v)),
  boolean: (v) => /^(t|f|true|false)$/.test(v),
};

interface Plan {
  fields: Field[];
  select: string;
  /** Fields whose values must be checked row by row (the hub's type is looser). */
  checks: { index: number; field: Field }[];
  /** Key or tenant columns the hub allows to be null: those rows are rejects. */
  nullableIdentity: Field[];
}

function plan(entity: Entity, columns: Map<string, HubColumn>, schema: string, scope: Scope): Plan {
  const fields = snapshotFields(entity);
  const data = fields.filter((f) => f.role !== 'row_hash');
  for (const f of data) {
    if (!columns.has(f.column) && f.role !== 'tracked') {
      throw new PermanentError(`hub table ${schema}.${entity.table} has no column '${f.column}' (entity '${entity.name}', ${f.role} '${f.name}')`);
    }
  }
  // A tracked column the hub has dropped stays in history, null from now on.
  const values = data.map((f) => (columns.has(f.column) ? `t.${ident(f.column)}` : 'null'));
  const checks = data.flatMap((f, index) => {
    const c = columns.get(f.column);
    return c && !COMPATIBLE[f.type].test(c.type) ? [{ index, field: f }] : [];
  });
  const nullableIdentity = identityFields(entity).filter((f) => columns.get(f.column)?.nullable);
  const identityOk = nullableIdentity.map((f) => `t.${ident(f.column)} is not null`);
  const where = [...(scope !== null && entity.tenantColumn ? [`t.${ident(entity.tenantColumn)} = ${quote(scope)}`] : []), ...identityOk];
  const select = `select ${[...values, HASH_PLACEHOLDER].join(', ')} from ${tableName(schema, entity)} t${where.length ? ` where ${where.join(' and ')}` : ''}`;
  return { fields, select, checks, nullableIdentity };
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Counts lines, hashes each line's tracked values (the bytes between the identity fields and
 * the change time are exactly the canonical encoding), sums the hashes, and writes each hash
 * over the placeholder the hub's COPY put at the end of its line: the bytes go on where they
 * lie, never copied line by line. With per-row type checks it splits the lines and diverts
 * the failing ones to the rejects. A line ends at a raw newline: COPY escapes newlines inside
 * values.
 */
// Large buffers between the stages: zlib works on the thread pool one chunk at a time, and
// small chunks leave the hub's COPY waiting on round trips rather than on work.
const PIPE_BUFFER = 1 << 20;
const HASH_HEX = 64;
/** Selected as the last column: the line's room for its hash. */
const HASH_PLACEHOLDER = `'${'0'.repeat(HASH_HEX)}'`;

// One-shot hashing: several times cheaper than a Hash object per row.
// Hex straight from the native side: a Buffer per digest would cost twice as much.
const sha256 = (data: Buffer): string => sha256Of('sha256', data, 'hex');

class SnapshotScanner extends Transform {
  readonly checksum = new Checksum();
  extracted = 0;
  #carry: Buffer | null = null;
  #pending: Buffer[] = [];
  #pendingBytes = 0;

  constructor(
    private readonly entity: Entity,
    private readonly scope: Scope,
    private readonly identityCount: number,
    private readonly checks: Plan['checks'],
    private readonly flushRejects: (rejects: Reject[]) => Promise<void>,
  ) {
    super({ highWaterMark: PIPE_BUFFER });
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, done: TransformCallback): void {
    let body = chunk;
    let head: Buffer | null = null;
    if (this.#carry) {
      // Only the line that spans the two chunks is joined; the rest is read where it lies.
      const nl = chunk.indexOf(10);
      if (nl < 0) {
        this.#carry = Buffer.concat([this.#carry, chunk]);
        return done();
      }
      head = Buffer.concat([this.#carry, chunk.subarray(0, nl + 1)]);
      body = chunk.subarray(nl + 1);
      this.#carry = null;
    }
    const last = body.lastIndexOf(10);
    if (last + 1 < body.length) this.#carry = body.subarray(last + 1);
    const whole = body.subarray(0, last + 1);
    if (this.checks.length) return this.#checked(head ? Buffer.concat([head, whole]) : whole, done);
    if (head) this.#emit(this.#hashLines(head));
    if (whole.length) this.#emit(this.#hashLines(whole));
    done();
  }

  /** Hashes every line of `lines` (whole lines) into its placeholder; returns `lines`. */
  #hashLines(lines: Buffer): Buffer {
    for (let start = 0; start < lines.length; ) {
      const end = lines.indexOf(10, start);
      this.#hash(lines, start, end);
      this.extracted++;
      start = end + 1;
    }
    return lines;
  }

  #hash(line: Buffer, start: number, end: number): void {
    let from = start;
    for (let i = 0; i < this.identityCount; i++) from = line.indexOf(9, from) + 1;
    // The line ends: …tracked \t updated_at \t placeholder.
    const to = line.lastIndexOf(9, end - HASH_HEX - 2);
    const hash = sha256(line.subarray(from, to));
    this.checksum.add(hash);
    line.write(hash, end - HASH_HEX, 'latin1');
  }

  // Few, large writes downstream: each one costs a round trip to zlib's thread and a syscall.
  #emit(piece: Buffer): void {
    this.#pending.push(piece);
    this.#pendingBytes += piece.length;
    if (this.#pendingBytes >= PIPE_BUFFER) this.#flushOut();
  }

  #flushOut(): void {
    if (!this.#pendingBytes) return;
    this.push(this.#pending.length === 1 ? this.#pending[0] : Buffer.concat(this.#pending, this.#pendingBytes));
    this.#pending = [];
    this.#pendingBytes = 0;
  }

  #checked(whole: Buffer, done: TransformCallback): void {
    const rejects: Reject[] = [];
    for (let start = 0; start < whole.length; ) {
      const end = whole.indexOf(10, start);
      const line = whole.subarray(start, end + 1);
      start = end + 1;
      this.extracted++;
      const values = line.toString('utf8', 0, line.length - HASH_HEX - 2).split('\t');
      const bad = this.checks.find(({ index, field }) => values[index] !== '\\N' && !VALID[field.type](values[index]!));
      if (bad) {
        rejects.push({
          entity: this.entity.name,
          tenant: this.scope,
          key: values.slice(0, this.identityCount).join('/'),
          field: bad.field.name,
          reason: `${bad.field.name}: '${values[bad.index]}' is not a valid ${bad.field.type}`,
          raw: values.join('\t'),
        });
        continue;
      }
      this.#hash(line, 0, line.length - 1);
      this.#emit(line);
    }
    if (!rejects.length) return done();
    this.flushRejects(rejects).then(() => done(), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.#carry?.length) return done(new Error(`entity '${this.entity.name}': the hub's COPY output ended inside a line`));
    this.#flushOut();
    done();
  }

  get rejected(): number {
    return this.extracted - this.checksum.count;
  }
}

/** Rows the scope's query leaves out because the tenant or a key is null: each one a reject. */
async function copyNullIdentityRejects(client: pg.PoolClient, schema: string, entity: Entity, scope: Scope, nullable: Field[], onRejects: ExtractOptions['onRejects']): Promise<number> {
  // Rows without a tenant belong to no tenant's scope: the global scope reports them, once; a
  // tenant's scope reports its own rows without a key.
  const wanted = (f: Field) => (entity.tenantColumn && scope === null ? f.role === 'tenant' : f.role === 'key');
  const conditions = nullable.filter(wanted).map((f) => `t.${ident(f.column)} is null`);
  if (!conditions.length) return 0;
  const scoped = scope !== null && entity.tenantColumn ? `t.${ident(entity.tenantColumn)} = ${quote(scope)} and ` : '';
  const { rows } = await client.query<{ raw: string; missing: string }>(
    `select (t.*)::text as raw, concat_ws(', ', ${nullable.map((f) => `case when t.${ident(f.column)} is null then ${quote(f.name)} end`).join(', ')}) as missing
     from ${tableName(schema, entity)} t where ${scoped}(${conditions.join(' or ')})`,
  );
  if (rows.length) {
    await onRejects(
      rows.map((r) => ({ entity: entity.name, tenant: scope, key: '', field: r.missing.split(', ')[0]!, reason: `${r.missing} missing: the row cannot be placed in history`, raw: r.raw })),
    );
  }
  return rows.length;
}

async function extractEntity(client: pg.PoolClient, opts: ExtractOptions, entity: Entity): Promise<StagedEntity> {
  const columns = await hubColumns(client, opts.schema, entity);
  const p = plan(entity, columns, opts.schema, opts.scope);
  const nullRejects = await copyNullIdentityRejects(client, opts.schema, entity, opts.scope, p.nullableIdentity, opts.onRejects);
  if (!inScope(entity, opts.scope)) {
    return { entity: entity.name, file: null, extracted: nullRejects, staged: 0, rejected: nullRejects, sum: '0', bytes: 0 };
  }
  const scanner = new SnapshotScanner(entity, opts.scope, identityFields(entity).length, p.checks, opts.onRejects);
  const file = path.join(opts.dir, `${entity.name}${EXTENSION[opts.compression ?? 'gzip']}`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { highWaterMark: PIPE_BUFFER });
  const compress = compressor(opts.compression ?? 'gzip');
  try {
    await pipeline([client.query(copyTo(`copy (${p.select}) to stdout`)), scanner, ...compress, out], { signal: opts.signal });
  } catch (err) {
    await rm(partial, { force: true });
    throw err;
  }
  await rename(partial, file);
  const staged = scanner.checksum.count;
  return {
    entity: entity.name,
    file,
    extracted: scanner.extracted + nullRejects,
    staged,
    rejected: scanner.rejected + nullRejects,
    sum: scanner.checksum.sum,
    bytes: out.bytesWritten,
  };
}

/**
 * Extracts one scope. The global scope (null) takes the reference data and reports rows of
 * tenant-scoped entities that carry no tenant.
 */
export async function extractScope(opts: ExtractOptions): Promise<ExtractResult> {
  await mkdir(opts.dir, { recursive: true });
  try {
    return await inHubSnapshot(opts.hub, async (client, snapshotAt) => {
      const entities: StagedEntity[] = [];
      for (const entity of Object.values(opts.entities)) {
        if (!inScope(entity, opts.scope) && !(opts.scope === null && entity.tenantColumn)) continue;
        opts.signal?.throwIfAborted();
        entities.push(await extractEntity(client, opts, entity));
      }
      return { scope: opts.scope, snapshotAt, entities };
    });
  } catch (err) {
    throw err instanceof PermanentError ? err : Object.assign(err as Error, { message: `extract of ${scopeLabel(opts.scope)}: ${(err as Error).message}` });
  }
}
