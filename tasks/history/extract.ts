import { createWriteStream } from 'node:fs';
import { mkdir, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { hash as sha256Of } from 'node:crypto';
import { Readable, Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { constants, createBrotliCompress, createGzip } from 'node:zlib';
import type pg from 'pg';
import { to as copyTo } from 'pg-copy-streams';
import { PermanentError } from '../../core/errors.ts';
import { hubColumns, inHubSnapshot, type HubColumn, type HubDb } from '../../hub/db.ts';
import { columnOf, type Entities, type Entity } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { InvalidTenantIdError, tenantIdProblem } from '../../hub/tenant-id.ts';
import { Checksum } from '../../transforms/row-hash.ts';
import { identityFields, inScope, scopeLabel, snapshotFields, type Field, type Scope } from './layout.ts';
import { fromCopyText, toCopyText } from '../../transforms/copy-text.ts';
import { COMPATIBLE, flagsOf, limitsOf, quote, reasonOf, VALID, type Flag, type RejectRule } from './rules.ts';

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

export interface Reject {
  entity: string;
  tenant: string | null;
  /** The key as read (its fields joined by '/'), '' when missing. */
  key: string;
  field: string;
  rule: RejectRule;
  /** For people: names the field and the rule; personal and financial values masked. */
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
  /**
   * The identity fields of the rejected rows that have a key, staged like the snapshot: keys
   * the load must leave untouched (a reject is unknown today, never deleted). Null when none.
   */
  rejectedKeys: { file: string; count: number } | null;
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

interface Plan {
  fields: Field[];
  select: string;
  /** Fields whose values must be checked row by row in the scanner (the hub's type is looser). */
  checks: { index: number; field: Field }[];
  flags: Flag[];
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
    return c && !COMPATIBLE[f.type](c.type) ? [{ index, field: f }] : [];
  });
  // The tenant column equals the scope here; rows without a valid tenant are the global scope's to report.
  const flags = data.flatMap((f, index) => {
    const c = columns.get(f.column);
    return c && f.role !== 'tenant' ? flagsOf(entity, f, index, c) : [];
  });
  const last = flags.length
    ? `case ${flags.map((f, i) => `when ${f.condition} then '${flagText(i)}'`).join(' ')} else ${HASH_PLACEHOLDER} end`
    : HASH_PLACEHOLDER;
  const where = scope !== null && entity.tenantColumn ? ` where t.${ident(entity.tenantColumn)} = ${quote(scope)}` : '';
  const select = `select ${[...values, last].join(', ')} from ${tableName(schema, entity)} t${where}`;
  return { fields, select, checks, flags };
}

/**
 * Counts lines, hashes each line's tracked values (the bytes between the identity fields and
 * the change time are exactly the canonical encoding), sums the hashes, and writes each hash
 * over the placeholder the hub's COPY put at the end of its line: the bytes go on where they
 * lie, never copied line by line. A line the hub marked (a flag in place of the placeholder)
 * goes to the rejects; with per-row type checks the scanner also splits the lines and diverts
 * the failing ones. A line ends at a raw newline: COPY escapes newlines inside values.
 */
// Large buffers between the stages: zlib works on the thread pool one chunk at a time, and
// small chunks leave the hub's COPY waiting on round trips rather than on work.
const PIPE_BUFFER = 1 << 20;
const HASH_HEX = 64;
/** Selected as the last column: the line's room for its hash. */
const HASH_PLACEHOLDER = `'${'0'.repeat(HASH_HEX)}'`;
/** A failed check's mark, as wide as the placeholder it stands in: '!', the check's number, '!'s. */
const FLAG = 0x21;
const flagText = (i: number) => `!${String(i).padStart(4, '0')}`.padEnd(HASH_HEX, '!');
const flagNumber = (line: Buffer, end: number) => Number(line.toString('latin1', end - HASH_HEX + 1, end - HASH_HEX + 5));

// One-shot hashing: several times cheaper than a Hash object per row.
// Hex straight from the native side: a Buffer per digest would cost twice as much.
const sha256 = (data: Buffer): string => sha256Of('sha256', data, 'hex');

class SnapshotScanner extends Transform {
  readonly checksum = new Checksum();
  extracted = 0;
  /** Identity fields (COPY text, tab separated) of rejected rows whose key the warehouse may hold. */
  readonly rejectedKeys: string[] = [];
  #carry: Buffer | null = null;
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #rejects: Reject[] = [];
  readonly #identityCount: number;
  readonly #tenantCount: number;

  constructor(
    private readonly entity: Entity,
    private readonly scope: Scope,
    private readonly p: Plan,
    private readonly flushRejects: (rejects: Reject[]) => Promise<void>,
  ) {
    super({ highWaterMark: PIPE_BUFFER });
    this.#identityCount = identityFields(entity).length;
    this.#tenantCount = entity.tenantColumn ? 1 : 0;
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
    if (this.p.checks.length) this.#checked(head ? Buffer.concat([head, whole]) : whole);
    else {
      if (head) this.#scan(head);
      if (whole.length) this.#scan(whole);
    }
    if (!this.#rejects.length) return done();
    const rejects = this.#rejects;
    this.#rejects = [];
    this.flushRejects(rejects).then(() => done(), done);
  }

  /** Hashes every line of `lines` (whole lines) into its placeholder and passes them on, less the marked ones. */
  #scan(lines: Buffer): void {
    let kept = 0;
    for (let start = 0; start < lines.length; ) {
      const end = lines.indexOf(10, start);
      this.extracted++;
      if (lines[end - HASH_HEX] === FLAG) {
        if (start > kept) this.#emit(lines.subarray(kept, start));
        this.#flagged(lines.subarray(start, end));
        kept = end + 1;
      } else this.#hash(lines, start, end);
      start = end + 1;
    }
    if (kept < lines.length) this.#emit(kept ? lines.subarray(kept) : lines);
  }

  #hash(line: Buffer, start: number, end: number): void {
    let from = start;
    for (let i = 0; i < this.#identityCount; i++) from = line.indexOf(9, from) + 1;
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

  /** The line's values (COPY text), without the placeholder and the newline. */
  #values(line: Buffer, end: number): string[] {
    return line.toString('utf8', 0, end - HASH_HEX - 1).split('\t');
  }

  /** A line the hub marked: the flag says which check failed. `line` excludes its newline. */
  #flagged(line: Buffer): void {
    const flag = this.p.flags[flagNumber(line, line.length)]!;
    this.#reject(this.#values(line, line.length), flag.field, flag.rule, flag.index);
  }

  #reject(values: string[], field: Field, rule: RejectRule, index: number): void {
    const identity = values.slice(0, this.#identityCount);
    const keyCastable = this.p.checks.every((c) => c.index >= this.#identityCount || VALID[c.field.type](identity[c.index]!));
    // Only a key the warehouse can hold can have been loaded before: it stays as it was (unknown today, not deleted).
    if (rule !== 'key' && keyCastable && !identity.includes('\\N')) this.rejectedKeys.push(identity.join('\t'));
    this.#rejects.push({
      entity: this.entity.name,
      tenant: this.scope,
      key: identity
        .slice(this.#tenantCount)
        .map((v) => fromCopyText(v) ?? '')
        .join('/'),
      field: field.name,
      rule,
      reason: reasonOf(field, rule, fromCopyText(values[index]!), limitsOf(this.entity, field)),
      raw: values.join('\t'),
    });
  }

  #checked(whole: Buffer): void {
    for (let start = 0; start < whole.length; ) {
      const end = whole.indexOf(10, start);
      const line = whole.subarray(start, end + 1);
      start = end + 1;
      this.extracted++;
      if (line[line.length - 1 - HASH_HEX] === FLAG) {
        this.#flagged(line.subarray(0, line.length - 1));
        continue;
      }
      const values = this.#values(line, line.length - 1);
      const bad = this.p.checks.find(({ index, field }) => values[index] !== '\\N' && !VALID[field.type](values[index]!));
      if (bad) {
        this.#reject(values, bad.field, 'type', bad.index);
        continue;
      }
      this.#hash(line, 0, line.length - 1);
      this.#emit(line);
    }
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
  await pipeline([Readable.from([Buffer.from(`${keys.join('\n')}\n`)]), ...compressor(compression), createWriteStream(`${file}.partial`)]);
  await rename(`${file}.partial`, file);
  return file;
}

async function extractEntity(client: pg.PoolClient, opts: ExtractOptions, entity: Entity): Promise<StagedEntity> {
  const columns = await hubColumns(client, opts.schema, entity);
  if (!inScope(entity, opts.scope)) {
    const rejected = await copyTenantRejects(client, opts.schema, entity, columns, opts.onRejects);
    return { entity: entity.name, file: null, extracted: rejected, staged: 0, rejected, sum: '0', bytes: 0, rejectedKeys: null };
  }
  const p = plan(entity, columns, opts.schema, opts.scope);
  const scanner = new SnapshotScanner(entity, opts.scope, p, opts.onRejects);
  const compression = opts.compression ?? 'gzip';
  const file = path.join(opts.dir, `${entity.name}${EXTENSION[compression]}`);
  const partial = `${file}.partial`;
  const out = createWriteStream(partial, { highWaterMark: PIPE_BUFFER });
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
