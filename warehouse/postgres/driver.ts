import { createReadStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type { PoolClient, QueryResult } from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
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
    async copyText(table, columns, lines) {
      const copy = client.query(copyFrom(`copy ${table} (${columns.map(d.id).join(', ')}) from stdin with (format text)`));
      await pipeline(Readable.from(chunks(lines)), copy);
      return Number(copy.rowCount);
    },
  };
}

const LINES_PER_CHUNK = 1_000;

/** Lines of COPY text, a chunk at a time. */
function* chunks(lines: readonly string[]): Generator<string> {
  for (let i = 0; i < lines.length; i += LINES_PER_CHUNK) yield `${lines.slice(i, i + LINES_PER_CHUNK).join('\n')}\n`;
}
