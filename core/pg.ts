import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import { isSessionLost } from './sqlstate.ts';

/*
 * The one way hubflow opens PostgreSQL: a pg pool under kysely, for the metadata store and for
 * the hub alike. The pool stays reachable for the few statements kysely cannot send (COPY,
 * several statements in one round trip).
 */

const INT8 = 20;
const DATE = 1082;

/** Counts and identity ids arrive as int8: they stay far below 2^53, and numbers are what callers want. */
const numbersForInt8 = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === INT8) return (value: string) => Number(value);
    return pg.types.getTypeParser(oid, format);
  },
};

/** As above, and dates stay 'YYYY-MM-DD' (a Date would shift them by the local zone). */
const numbersAndPlainDates = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === DATE) return (value: string) => value;
    return numbersForInt8.getTypeParser(oid, format);
  },
};

export interface OpenOptions {
  poolSize?: number;
  /** Schema(s) unqualified names resolve to. */
  searchPath?: string;
  applicationName?: string;
  /** Return `date` columns as 'YYYY-MM-DD' strings. */
  plainDates?: boolean;
}

const pools = new WeakMap<object, pg.Pool>();

/**
 * Settings every hubflow session starts with, sent in the startup packet so they win over a
 * server, database or role default. With `standard_conforming_strings` off a backslash escapes
 * inside '...', and a value that ends in one breaks out of its literal.
 */
export const SESSION_OPTIONS = '-c standard_conforming_strings=on';

export function openPostgres<DB>(url: string, options: OpenOptions = {}): Kysely<DB> {
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? 10,
    options: options.searchPath ? `-c search_path=${options.searchPath} ${SESSION_OPTIONS}` : SESSION_OPTIONS,
    types: options.plainDates ? numbersAndPlainDates : numbersForInt8,
    application_name: options.applicationName ?? 'hubflow',
  });
  // An idle client whose connection the server closed (restart, failover, shutdown) is dropped
  // by the pool and replaced on next use; unhandled, its error event would end the process.
  pool.on('error', () => undefined);
  // The pool listens only to idle clients. A checked-out one whose server goes away (between
  // the statements of a transaction, say) would emit an error nobody hears, which ends the
  // process: its queries get the error already, and the pool drops a broken client when it
  // comes back, so the event itself needs no more than a listener.
  pool.on('connect', (client) => client.on('error', () => undefined));
  const db = new Kysely<DB>({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return db;
}

/** The pg pool under a database opened by openPostgres. */
export function poolOf(db: object): pg.Pool {
  const pool = pools.get(db);
  if (!pool) throw new Error('not a database opened by openPostgres');
  return pool;
}

const onClient = new WeakMap<pg.PoolClient, Kysely<never>>();

/**
 * A kysely instance over one checked-out client, so its statements join that client's
 * transaction. Made once per pooled client (pools reuse their clients).
 */
export function kyselyOnClient<DB>(client: pg.PoolClient): Kysely<DB> {
  let db = onClient.get(client);
  if (!db) {
    const borrowed = { query: client.query.bind(client), release: () => undefined };
    db = new Kysely<never>({
      dialect: new PostgresDialect({ pool: { connect: async () => borrowed, end: async () => undefined } }),
    });
    onClient.set(client, db);
  }
  return db as unknown as Kysely<DB>;
}

type Held = Promise<{ client: pg.PoolClient; onError: (err: Error) => void }>;

/**
 * One pooled connection kept by a caller that sends one statement (or transaction) at a time,
 * such as a group-commit flush: it skips the pool checkout on every use, which on a busy
 * worker costs an event-loop turn per statement. A connection that fails is handed back as
 * broken and the next use takes another.
 */
export class HeldClient {
  #held: Held | undefined;
  #inUse: Promise<unknown> = Promise.resolve();

  constructor(private readonly pool: pg.Pool) {}

  /** Runs `fn` on the held connection; callers must not overlap their uses. */
  use<T>(fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
    const run = (async () => {
      const held = (this.#held ??= this.#connect());
      const { client } = await held;
      try {
        return await fn(client);
      } catch (err) {
        if (isSessionLost(err)) this.#giveBack(held, err);
        throw err;
      }
    })();
    this.#inUse = run.catch(() => undefined);
    return run;
  }

  #connect(): Held {
    const held = this.pool.connect().then((client) => {
      // A checked-out client has no pool listener: unhandled, a connection error would end the process.
      const onError = (err: Error) => this.#giveBack(held, err);
      client.on('error', onError);
      return { client, onError };
    });
    // A failed connect must not stick: the next use tries again.
    held.catch(() => {
      if (this.#held === held) this.#held = undefined;
    });
    return held;
  }

  /** Returns the connection to the pool (destroyed, when `err` says it broke), once. */
  #giveBack(held: Held, err?: unknown): void {
    if (this.#held !== held) return;
    this.#held = undefined;
    void held.then(
      ({ client, onError }) => {
        client.removeListener('error', onError);
        client.release(err === undefined ? undefined : err instanceof Error ? err : new Error(String(err)));
      },
      () => undefined,
    );
  }

  /** Gives the connection back to the pool once the use in flight, if any, is over. */
  async release(): Promise<void> {
    await this.#inUse;
    const held = this.#held;
    if (!held) return;
    this.#giveBack(held);
    await held.catch(() => undefined);
  }
}
