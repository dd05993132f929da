import type { Kysely } from 'kysely';
import { openPostgres, poolOf } from '../../core/pg.ts';
import type { Warehouse } from '../contract.ts';
import { postgresAdapter } from './adapter.ts';
import { openSession } from './driver.ts';
import { postgresDialect as d } from './sql.ts';

/** The embedded default: history in a schema of a PostgreSQL database, loaded with COPY. */
export function openPostgresWarehouse(url: string, schema: string): Warehouse {
  const db: Kysely<Record<never, never>> = openPostgres(url, { poolSize: 4, applicationName: 'hubflow-warehouse' });
  const pool = poolOf(db);
  return {
    dialect: d,
    adapter: postgresAdapter,
    schema,
    table: (name) => `${d.id(schema)}.${d.id(name)}`,
    async session(fn) {
      const client = await pool.connect();
      let failure: Error | undefined;
      try {
        return await fn(await openSession(client));
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
