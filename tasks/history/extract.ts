import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { hash as sha256Of } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createGzip } from 'node:zlib';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { poolOf } from '../../server/connections/pg.ts';
import { PermanentError } from '../../server/errors.ts';
import type { HubDb } from '../../server/hub/db.ts';
import type { ColumnType, Entities, Entity } from '../../server/hub/entities.ts';
import { ident, tableName } from '../../server/hub/schema.ts';
import { Checksum } from '../../transforms/row-hash.ts';
import { identityFields, inScope, scopeLabel, snapshotFields, type Field, type Scope } from './layout.ts';

/**
 * Extract: one tenant's snapshot of every entity, read in a single REPEATABLE READ transaction
 * (so all entities agree with each other and with `snapshotAt`), streamed with COPY into gzip
 * files in the staging area. PostgreSQL computes each row's hash while it reads; this side
 * only counts lines, sums the hashes and passes the bytes on, so memory stays flat and the
 * extract costs little more than the COPY itself.
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
  /** Absolute path of the gzip'd COPY-text file; null when nothing was staged. */
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
}

const ISO_UTC = `'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'`;

interface HubColumn {
  type: string;
  nullable: boolean;
}

async function hubColumns(client: pg.PoolClient, schema: string, entity: Entity): Promise<Map<string, HubColumn>> {
  const { rows } = await client.query<{ column_name: string; data_type: string; is_nullable: string }>(
    'select column_name, data_type, is_nullable from information_schema.columns where table_schema = $1 and table_name = $2',
    [schema, entity.table],
  );
  if (!rows.length) throw new PermanentError(`hub table ${schema}.${entity.table} (entity '${entity.name}') does not exist`);
  return new Map(rows.map((r) => [r.column_name, { type: r.data_type, nullable: r.is_nullable === 'YES' }]));
}

const COMPATIBLE: Record<ColumnType, RegExp> = {
  text: /^(text|character varying|character|uuid|citext)$/,
  integer: /^(smallint|integer|bigint)$/,
  numeric: /^(numeric|smallint|integer|bigint)$/,
  date: /^date$/,
  timestamptz: /^timestamp with time zone$/,
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
  const select = `select ${values.join(', ')} from ${tableName(schema, entity)} t${where.length ? ` where ${where.join(' and ')}` : ''}`;
  return { fields, select, checks, nullableIdentity };
}

function quote(text: string): string {
  return `'${text.replaceAll("'", "''")}'`;
}

/**
 * Counts lines, hashes each line's tracked values (the bytes between the identity fields and
 * the change time are exactly the canonical encoding), sums the hashes, and writes each line
 * with its hash appended. With per-row type checks it splits the lines and diverts the failing
 * ones to the rejects. A line ends at a raw newline: COPY escapes newlines inside values.
 */
// Large buffers between the stages: zlib works on the thread pool one chunk at a time, and
// small chunks leave the hub's COPY waiting on round trips rather than on work.
const PIPE_BUFFER = 1 << 20;

// One-shot hashing: several times cheaper than a Hash object per row.
const sha256 = (data: Buffer, encoding: 'hex') => sha256Of('sha256', data, encoding);

class SnapshotScanner extends Transform {
  readonly checksum = new Checksum();
  extracted = 0;
  #carry: Buffer | null = null;

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
    const buf = this.#carry ? Buffer.concat([this.#carry, chunk]) : chunk;
    const last = buf.lastIndexOf(10);
    if (last < 0) {
      this.#carry = buf;
      return done();
    }
    this.#carry = last + 1 < buf.length ? buf.subarray(last + 1) : null;
    const whole = buf.subarray(0, last + 1);
    if (this.checks.length) return this.#checked(whole, done);
    const lines = countLines(whole);
    const out = Buffer.allocUnsafe(whole.length + lines * 65);
    let at = 0;
    for (let start = 0; start < whole.length; ) {
      const end = whole.indexOf(10, start);
      const hash = this.#hash(whole, start, end);
      at += whole.copy(out, at, start, end);
      out[at++] = 9;
      at += out.write(hash, at, 'latin1');
      out[at++] = 10;
      start = end + 1;
    }
    this.extracted += lines;
    done(null, out.subarray(0, at));
  }

  #hash(line: Buffer, start: number, end: number): string {
    let from = start;
    for (let i = 0; i < this.identityCount; i++) from = line.indexOf(9, from) + 1;
    const to = line.lastIndexOf(9, end - 1);
    const hash = sha256(line.subarray(from, to), 'hex');
    this.checksum.add(hash);
    return hash;
  }

  #checked(whole: Buffer, done: TransformCallback): void {
    const kept: Buffer[] = [];
    const rejects: Reject[] = [];
    for (let start = 0; start < whole.length; ) {
      const end = whole.indexOf(10, start);
      const line = whole.subarray(start, end);
      start = end + 1;
      this.extracted++;
      const values = line.toString('utf8').split('\t');
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
      kept.push(line, Buffer.from(`\t${this.#hash(line, 0, line.length)}\n`, 'latin1'));
    }
    const out = kept.length ? Buffer.concat(kept) : null;
    if (!rejects.length) return done(null, out);
    this.flushRejects(rejects).then(() => done(null, out), done);
  }

  override _flush(done: TransformCallback): void {
    if (this.#carry?.length) return done(new Error(`entity '${this.entity.name}': the hub's COPY output ended inside a line`));
    done();
  }

  get rejected(): number {
    return this.extracted - this.checksum.count;
  }
}

function countLines(buf: Buffer): number {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
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
  const file = path.join(opts.dir, `${entity.name}.tsv.gz`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { highWaterMark: PIPE_BUFFER });
  // Huffman coding only: a third of the size at a fraction of deflate's CPU; the staging files
  // are read once, soon, and the extract must keep pace with the hub's COPY.
  const gzip = createGzip({ level: constants.Z_BEST_SPEED, strategy: constants.Z_HUFFMAN_ONLY, chunkSize: 256 * 1024 });
  try {
    await pipeline(client.query(copyTo(`copy (${p.select}) to stdout`)), scanner, gzip, out, { signal: opts.signal });
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
  const client = await poolOf(opts.hub).connect();
  let broken: unknown;
  try {
    await client.query('begin isolation level repeatable read read only');
    await client.query(`set local timezone = 'UTC'`);
    await client.query(`set local datestyle = 'ISO, YMD'`);
    // The snapshot is taken by this statement; the instant it reports is at or after it, so
    // every change the snapshot holds happened at or before snapshotAt.
    const { rows } = await client.query<{ at: string }>(`select to_char(clock_timestamp() at time zone 'UTC', ${ISO_UTC}) as at`);
    const snapshotAt = rows[0]!.at;
    const entities: StagedEntity[] = [];
    for (const entity of Object.values(opts.entities)) {
      if (!inScope(entity, opts.scope) && !(opts.scope === null && entity.tenantColumn)) continue;
      opts.signal?.throwIfAborted();
      entities.push(await extractEntity(client, opts, entity));
    }
    await client.query('commit');
    return { scope: opts.scope, snapshotAt, entities };
  } catch (err) {
    broken = err;
    await client.query('rollback').catch(() => undefined);
    throw err instanceof PermanentError ? err : Object.assign(err as Error, { message: `extract of ${scopeLabel(opts.scope)}: ${(err as Error).message}` });
  } finally {
    client.release(broken instanceof Error && !(broken instanceof PermanentError) ? broken : undefined);
  }
}
