import { hash as sha256Of } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';
import { PermanentError } from '../../core/errors.ts';
import type { HubColumn } from '../../hub/snapshot.ts';
import type { Entity } from '../../hub/entities.ts';
import { ident, tableName } from '../../hub/sql-names.ts';
import { Checksum } from '../../transforms/row-hash.ts';
import { fromCopyText } from '../../transforms/copy-text.ts';
import { identityFields, snapshotFields, type Field, type Scope } from './layout.ts';
import { COMPATIBLE, flagsOf, limitsOf, quote, reasonOf, VALID, type Flag, type RejectRule } from './rules.ts';

/*
 * One entity's snapshot as the extract reads it: the COPY query (plan), which checks what the
 * hub can check cheaply and leaves each line room for its hash, and the scanner, which fills
 * that room and diverts the lines that break the record contract to the rejects.
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

// Large buffers between the stages: zlib works on the thread pool one chunk at a time, and
// small chunks leave the hub's COPY waiting on round trips rather than on work.
export const PIPE_BUFFER = 1 << 20;
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

export interface Plan {
  fields: Field[];
  select: string;
  /** Fields whose values must be checked row by row in the scanner (the hub's type is looser). */
  checks: { index: number; field: Field }[];
  flags: Flag[];
}

/** `changed`, when given, is a further SQL condition on the rows (`t.`): an incremental extract's watermark. */
export function plan(entity: Entity, columns: Map<string, HubColumn>, schema: string, scope: Scope, changed?: string): Plan {
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
  const conditions = [
    ...(scope !== null && entity.tenantColumn ? [`t.${ident(entity.tenantColumn)} = ${quote(scope)}`] : []),
    ...(changed ? [`(${changed})`] : []),
  ];
  const where = conditions.length ? ` where ${conditions.join(' and ')}` : '';
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
export class SnapshotScanner extends Transform {
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
