import { Kysely, Migrator, PostgresDialect, sql, type Migration } from 'kysely';
import pg from 'pg';
import * as initial from './migrations/0001-initial.ts';
import * as engineFunctions from './migrations/0002-engine-functions.ts';
import * as installation from './migrations/0003-installation.ts';
import type { StoreSchema } from './schema.ts';

export type Store = Kysely<StoreSchema>;

const MIGRATIONS: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-engine-functions': engineFunctions,
  '0003-installation': installation,
};

// Identity columns are bigint; ids stay far below 2^53, and numbers are what callers want.
const INT8 = 20;
const types = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

const pools = new WeakMap<Store, pg.Pool>();

/**
 * The pg pool under a store, for the few statements kysely cannot send: several statements in
 * one round trip (simple protocol). Everything else goes through kysely.
 */
export function poolOf(db: Store): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('not a store opened by openStore');
  return pool;
}

const onClient = new WeakMap<pg.PoolClient, Store>();

/**
 * A kysely instance over one checked-out client, so its statements join that client's
 * transaction. Made once per pooled client (pools reuse their clients).
 */
export function storeOnClient(client: pg.PoolClient): Store {
  let db = onClient.get(client);
  if (!db) {
    const borrowed = { query: client.query.bind(client), release: () => undefined };
    db = new Kysely<StoreSchema>({
      dialect: new PostgresDialect({ pool: { connect: async () => borrowed, end: async () => undefined } }),
    });
    onClient.set(client, db);
  }
  return db;
}

/** Opens the metadata store: a pool whose search_path is hubflow's schema. */
export function openStore(databaseUrl: string, schema: string, poolSize = 10): Store {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: poolSize,
    options: `-c search_path=${schema}`,
    types,
    application_name: 'hubflow',
  });
  // An idle client whose connection the server closed (restart, failover, shutdown) is dropped
  // by the pool and replaced on next use; unhandled, its error event would end the process.
  pool.on('error', () => undefined);
  const db = new Kysely<StoreSchema>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return db;
}

/** Creates the schema if needed and applies pending migrations; safe to run from many processes at once. */
export async function migrateStore(db: Store, schema: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // Two processes starting together would race on `create schema`; the advisory lock serialises them.
    await sql`select pg_advisory_xact_lock(hashtext('hubflow-migrate'))`.execute(trx);
    await sql`create schema if not exists ${sql.id(schema)}`.execute(trx);
  });
  const migrator = new Migrator({
    db,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => MIGRATIONS },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`store migration ${failed ?? ''} failed: ${(error as Error).message}`, { cause: error });
  }
}
