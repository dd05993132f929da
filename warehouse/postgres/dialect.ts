import { createReadStream } from 'node:fs';
import { pipeline } from 'node:stream/promises';
import { createBrotliDecompress, createGunzip } from 'node:zlib';
import type { Kysely } from 'kysely';
import { from as copyFrom } from 'pg-copy-streams';
import { SQL_TYPES } from '../../demo/schema.ts';
import { openPostgres, poolOf } from '../../core/pg.ts';
import type { Dialect, Warehouse, WarehouseSession } from '../dialect.ts';

export const postgresDialect: Dialect = {
  name: 'postgres',
  id: (name) => `"${name.replaceAll('"', '""')}"`,
  text: (value) => `'${value.replaceAll("'", "''")}'`,
  timestamp: (iso) => `'${iso}'::timestamptz`,
  // History columns keep the demo hub's types: what the hub holds, history holds.
  type: (t) => SQL_TYPES[t],
  timestampType: 'timestamptz',
  bigintType: 'bigint',
  int60: (h) => `('x' || substr(${h}, 1, 15))::bit(60)::bigint`,
  // Temporary tables are private to the session and skip the WAL: staging costs no durability.
  createTemp: (table, columns) => `create temporary table ${table} (${columns}) on commit preserve rows`,
  addColumn: (table, column, type) => `alter table ${table} add column if not exists ${column} ${type}`,
  // PostgreSQL keeps a view's grants across `create or replace`.
  replaceView: (view, select) => `create or replace view ${view} as ${select}`,
};

/** The embedded default: history in a schema of a PostgreSQL database, loaded with COPY. */
export function openPostgresWarehouse(url: string, schema: string): Warehouse {
  const db: Kysely<Record<never, never>> = openPostgres(url, { poolSize: 4, applicationName: 'hubflow-warehouse' });
  const pool = poolOf(db);
  const d = postgresDialect;
  return {
    dialect: d,
    schema,
    table: (name) => `${d.id(schema)}.${d.id(name)}`,
    async session(fn) {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        await client.query(`set timezone = 'UTC'`);
        const session: WarehouseSession = {
          dialect: d,
          async query<R>(text: string) {
            const result = await client.query(text);
            return result.rows as R[];
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
        };
        return await fn(session);
      } catch (err) {
        // A connection that failed mid-transaction is not put back as if it were clean.
        failure = err instanceof Error ? err : new Error(String(err));
        throw err;
      } finally {
        client.release(failure);
      }
    },
    close: () => db.destroy(),
  };
}
