import { createHash } from 'node:crypto';

/**
 * The canonical encoding behind `row_hash`, shared by the hub extract, the warehouses' deep
 * checks and the tests: a row's tracked values in the entity's column order, each written as
 * PostgreSQL's COPY text format writes it (session in UTC, ISO dates, booleans 't'/'f',
 * numerics with their scale), joined by tabs, null as `\N`. COPY escapes backslash and the
 * control characters \\b \\f \\n \\r \\t \\v inside values, so null stays apart from '' and no two different
 * rows share an encoding. Being the bytes the hub already sends, it is hashed without parsing.
 */
export function canonicalEncoding(values: readonly (string | null)[]): string {
  const fields = new Array<string>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    if (v === undefined) throw new Error(`canonical encoding: value ${i} is missing`);
    // Most values hold nothing to escape: a test is cheaper than a replace that changes nothing.
    fields[i] = v === null ? '\\N' : SPECIAL.test(v) ? v.replace(SPECIALS, (c) => ESCAPES[c]!) : v;
  }
  // join makes one flat string; appending would make a chain of pieces, larger while a batch holds it.
  return fields.join('\t');
}

const SPECIAL = /[\\\b\f\n\r\t\v]/;
const SPECIALS = /[\\\b\f\n\r\t\v]/g;

const ESCAPES: Record<string, string> = { '\\': '\\\\', '\b': '\\b', '\f': '\\f', '\n': '\\n', '\r': '\\r', '\t': '\\t', '\v': '\\v' };

/** The values of one line of that encoding: its inverse. */
export function decodeCanonical(line: string): (string | null)[] {
  return line.split('\t').map((f) => (f === '\\N' ? null : f.includes('\\') ? f.replace(/\\(.)/g, (_, c: string) => UNESCAPES[c] ?? c) : f));
}

const UNESCAPES: Record<string, string> = { '\\': '\\', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v' };

export function rowHash(values: readonly (string | null)[]): string {
  return hashOfEncoding(canonicalEncoding(values));
}

/** `rowHash` of values already in the canonical encoding. */
export function hashOfEncoding(encoding: string): string {
  return createHash('sha256').update(encoding, 'utf8').digest('hex');
}

/** 0-9, a-f, A-F to their value. */
function hexValue(code: number): number {
  const v = code <= 57 ? code - 48 : (code | 32) - 87;
  if (v < 0 || v > 15) throw new Error(`not a hexadecimal digest (character ${String.fromCharCode(code)})`);
  return v;
}

/**
 * An order-independent checksum of a set of rows: the exact sum of the first 60 bits of each
 * row's hash (int60(row_hash)). The warehouse computes the same sum in SQL over its current rows,
 * so equal sets give equal sums whatever order they were read in. Summed in two float halves,
 * exact while below 2^53, and folded into a BigInt every million rows.
 */
export class Checksum {
  count = 0;
  #total = 0n;
  #high = 0; // sum of the first 28 bits (7 hex digits)
  #low = 0; // sum of the next 32 bits (8 hex digits)

  /** Adds one row by its 64-hex-digit hash. */
  add(hash: string): void {
    // Decoded in place: two substrings per row would be a million short-lived strings a second.
    let high = 0;
    for (let i = 0; i < 7; i++) high = high * 16 + hexValue(hash.charCodeAt(i));
    let low = 0;
    for (let i = 7; i < 15; i++) low = low * 16 + hexValue(hash.charCodeAt(i));
    this.#high += high;
    this.#low += low;
    if ((++this.count & 0xfffff) === 0) this.#fold();
  }

  #fold(): void {
    this.#total += (BigInt(this.#high) << 32n) + BigInt(this.#low);
    this.#high = 0;
    this.#low = 0;
  }

  /** The exact sum as a decimal string. */
  get sum(): string {
    this.#fold();
    return this.#total.toString();
  }
}
