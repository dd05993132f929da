import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';

/**
 * Connections to a hub. Table and column names come from the entity configuration, so queries
 * are written with `sql` and identifiers from it rather than against a compile-time schema.
 */
export type HubTables = Record<never, never>;
export type HubDb = Kysely<HubTables>;

const INT8 = 20;
const DATE = 1082;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    // Counts come back as int8; dates stay 'YYYY-MM-DD' (a Date would shift them by the local zone).
    if (oid === INT8) return (value: string) => Number(value);
    if (oid === DATE) return (value: string) => value;
    return pg.types.getTypeParser(oid, format);
  },
};

const pools = new WeakMap<object, pg.Pool>();

export function openHub(url: string, poolSize = 4): HubDb {
  const pool = new pg.Pool({ connectionString: url, max: poolSize, types, application_name: 'hubflow-hub' });
  // A server-closed idle client must not end the process.
  pool.on('error', () => undefined);
  const db = new Kysely<HubTables>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return db;
}

/** The pg pool under a hub opened by openHub, for COPY, which kysely cannot send. */
export function hubPool(db: object): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('not a hub opened by openHub');
  return pool;
}

/** A kysely over one checked-out client, so its statements join that client's transaction. */
export function hubOnClient(client: pg.PoolClient): HubDb {
  const borrowed = { query: client.query.bind(client), release: () => undefined };
  return new Kysely<HubTables>({
    dialect: new PostgresDialect({ pool: { connect: async () => borrowed, end: async () => undefined } }),
  });
}
