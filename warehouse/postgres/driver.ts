import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type { PoolClient, QueryResult } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { canonicalEncoding } from '../../transforms/row-hash.ts';
import type { WarehouseSession } from '../contract.ts';
import { postgresDialect as d } from './sql.ts';

/** A session on one pooled connection, in UTC; staged files are loaded with COPY FROM STDIN. */
export async function openSession(client: PoolClient): Promise<WarehouseSession> {
  await client.query(`set timezone = 'UTC'`);
  return {
    dialect: d,
    async query<R>(text: string) {
      // Several statements in one query answer a result each: the last one's rows are the answer.
      const result: QueryResult | QueryResult[] = await client.query(text);
      return (Array.isArray(result) ? (result.at(-1)?.rows ?? []) : result.rows) as R[];
    },
    async load(table, columns, file) {
      const copy = client.query(copyFrom(`copy ${table} (${columns.map(d.id).join(', ')}) from stdin with (format text)`));
      const decompress = file.endsWith('.br')
        ? [createBrotliDecompress({ chunkSize: 1 << 20 })]
        : file.endsWith('.gz')
          ? [createGunzip({ chunkSize: 1 << 20 })]
          : [];
      await pipeline([createReadStream(file, { highWaterMark: 1 << 20 }), ...decompress, copy]);
      return Number(copy.rowCount);
    },
    async copyRows(table, columns, rows) {
      const copy = client.query(copyFrom(`copy ${table} (${columns.map(d.id).join(', ')}) from stdin with (format text)`));
      await pipeline(Readable.from(copyText(rows)), copy);
      return Number(copy.rowCount);
    },
  };
}

const ROWS_PER_CHUNK = 1_000;

/** Rows as COPY's text format, a chunk of lines at a time (the row-hash encoding is that format). */
function* copyText(rows: Iterable<readonly (string | null)[]>): Generator<string> {
  let chunk = '';
  let n = 0;
  for (const row of rows) {
    chunk += `${canonicalEncoding(row)}\n`;
    if (++n === ROWS_PER_CHUNK) {
      yield chunk;
      chunk = '';
      n = 0;
    }
  }
  if (chunk) yield chunk;
}
