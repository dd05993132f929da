import { PermanentError, RetryableError } from '../../core/errors.ts';
import type { Warehouse } from '../contract.ts';
import { snowflakeAdapter } from './adapter.ts';
import { destroy, execute, type SnowflakeConnectionLike, sessionOn } from './driver.ts';
import { sessionSettings, snowflakeDialect as d } from './sql.ts';

/**
 * History in Snowflake: the same apply as on PostgreSQL, loaded with PUT + COPY INTO from the
 * staged gzip'd COPY-text files. One session is one Snowflake connection (temporary tables and
 * transactions live on it), opened for the session and destroyed after it.
 */

export interface SnowflakeOptions {
  /** Account identifier, e.g. `myorg-myaccount`. */
  account: string;
  username: string;
  /** Password authentication; or `privateKeyPath` for key-pair authentication (preferred for services). */
  password?: string;
  privateKeyPath?: string;
  privateKeyPass?: string;
  warehouse?: string;
  role?: string;
  /**
   * Database and schema of the history tables. Like unquoted Snowflake names they are
   * case-insensitive: `analytics` and `ANALYTICS` are the same database.
   */
  database: string;
  schema: string;
  /** A named internal stage (`db.schema.stage`) for the uploads; default the user's stage `@~`. */
  stage?: string;
  /** QUERY_TAG of every statement, to find the loads in QUERY_HISTORY. */
  queryTag?: string;
  /**
   * How long a connection may take to log in before the session fails naming the account
   * (default 30 s): the driver's own login retries wait minutes on an account that never answers.
   */
  connectTimeoutMs?: number;
  /** Returns an unconnected connection; default snowflake-sdk's createConnection with the settings above. */
  connect?: () => SnowflakeConnectionLike | Promise<SnowflakeConnectionLike>;
}

const STAGE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$/;

/** The SNOWFLAKE_* settings as options; null when SNOWFLAKE_ACCOUNT is unset (Snowflake not configured). */
export function snowflakeOptionsFromEnv(env: Record<string, string | undefined>): SnowflakeOptions | null {
  const value = (name: string) => {
    const v = env[name] === undefined ? undefined : String(env[name]).trim();
    return v ? v : undefined;
  };
  const account = value('SNOWFLAKE_ACCOUNT');
  if (!account) return null;
  const required = (name: string) => {
    const v = value(name);
    if (!v) throw new Error(`SNOWFLAKE_ACCOUNT is set but ${name} is not`);
    return v;
  };
  const options: SnowflakeOptions = {
    account,
    username: required('SNOWFLAKE_USER'),
    database: required('SNOWFLAKE_DATABASE'),
    schema: required('SNOWFLAKE_SCHEMA'),
  };
  const optional = {
    password: value('SNOWFLAKE_PASSWORD'),
    privateKeyPath: value('SNOWFLAKE_PRIVATE_KEY_PATH'),
    privateKeyPass: value('SNOWFLAKE_PRIVATE_KEY_PASSPHRASE'),
    warehouse: value('SNOWFLAKE_WAREHOUSE'),
    role: value('SNOWFLAKE_ROLE'),
  };
  for (const [key, v] of Object.entries(optional)) if (v !== undefined) Object.assign(options, { [key]: v });
  const timeout = value('SNOWFLAKE_CONNECT_TIMEOUT_MS');
  if (timeout !== undefined) {
    if (!/^\d+$/.test(timeout) || Number(timeout) < 1)
      throw new Error(`SNOWFLAKE_CONNECT_TIMEOUT_MS: expected a whole number of milliseconds, got '${timeout}'`);
    options.connectTimeoutMs = Number(timeout);
  }
  if (!options.password && !options.privateKeyPath)
    throw new Error('SNOWFLAKE_ACCOUNT is set but neither SNOWFLAKE_PASSWORD nor SNOWFLAKE_PRIVATE_KEY_PATH is');
  return options;
}

export const DEFAULT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Logs the connection in, or fails naming the account: an unreachable account would otherwise
 * hold the command or task in the driver's login retries. Retryable, since a network that
 * blinked answers the next try.
 */
async function connectWithin(conn: SnowflakeConnectionLike, o: SnowflakeOptions): Promise<void> {
  const ms = o.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  const login = conn.connectAsync();
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new RetryableError(
            `Snowflake account '${o.account}' did not accept a connection within ${ms / 1000} s (SNOWFLAKE_CONNECT_TIMEOUT_MS); check SNOWFLAKE_ACCOUNT and that this machine reaches ${o.account}.snowflakecomputing.com`,
          ),
        ),
      ms,
    );
  });
  try {
    await Promise.race([login, late]);
  } catch (err) {
    // The abandoned login must not surface later as an unhandled rejection.
    login.catch(() => undefined);
    await destroy(conn).catch(() => undefined);
    if (err instanceof RetryableError) throw err;
    throw Object.assign(err as Error, { message: `Snowflake account '${o.account}': ${(err as Error).message}` });
  } finally {
    clearTimeout(timer);
  }
}

let driverConfigured = false;

async function createDriverConnection(o: SnowflakeOptions): Promise<SnowflakeConnectionLike> {
  // Loaded on first use: the driver is large and most installations never reach it.
  const { default: snowflake } = await import('snowflake-sdk');
  if (!driverConfigured) {
    // The driver's default logger writes INFO lines to ./snowflake.log of whatever folder the
    // worker runs in; its errors reach us as exceptions anyway, so only warnings go to stderr.
    const quiet = () => undefined;
    snowflake.configure({
      logLevel: 'WARN',
      customLogger: {
        error: (m) => process.stderr.write(`snowflake-sdk: ${m}\n`),
        warn: (m) => process.stderr.write(`snowflake-sdk: ${m}\n`),
        info: quiet,
        debug: quiet,
        trace: quiet,
      },
    });
    driverConfigured = true;
  }
  return snowflake.createConnection({
    account: o.account,
    username: o.username,
    ...(o.privateKeyPath ? { authenticator: 'SNOWFLAKE_JWT', privateKeyPath: o.privateKeyPath, privateKeyPass: o.privateKeyPass } : { password: o.password }),
    warehouse: o.warehouse,
    database: o.database,
    schema: o.schema,
    role: o.role,
    application: 'hubflow',
    // NUMBER(38,0) sums and counts overflow a JS number; callers convert with Number() or String().
    jsTreatIntegerAsBigInt: true,
  });
}

/** Snowflake, one connection per session; tables are `"<DATABASE>"."<SCHEMA>"."<NAME>"`. */
export function openSnowflakeWarehouse(options: SnowflakeOptions): Warehouse {
  if (options.stage !== undefined && !STAGE_NAME.test(options.stage))
    throw new PermanentError(`Snowflake stage '${options.stage}' is not a plain (optionally qualified) name`);
  const stageRoot = options.stage ? `@${options.stage}` : '@~';
  const queryTag = options.queryTag ?? 'hubflow';
  const connect = options.connect ?? (() => createDriverConnection(options));
  const live = new Set<SnowflakeConnectionLike>();

  return {
    dialect: d,
    adapter: snowflakeAdapter,
    schema: `${options.database.toUpperCase()}.${options.schema.toUpperCase()}`,
    table: (name) => `${d.id(options.database)}.${d.id(options.schema)}.${d.id(name)}`,
    async session(fn) {
      const conn = await connect();
      await connectWithin(conn, options);
      live.add(conn);
      const state = { inTransaction: false };
      try {
        for (const statement of sessionSettings(queryTag)) await execute(conn, statement);
        return await fn(sessionOn(conn, stageRoot, state));
      } finally {
        // A transaction left open on a dropped connection keeps its locks until Snowflake
        // aborts it, hours later; ending it here lets the retry start at once.
        if (state.inTransaction) await execute(conn, 'rollback').catch(() => undefined);
        live.delete(conn);
        await destroy(conn);
      }
    },
    async close() {
      await Promise.all([...live].map(destroy));
      live.clear();
    },
  };
}
