import { createHash } from 'node:crypto';
import path from 'node:path';
import { PermanentError, RetryableError } from '../../core/errors.ts';
import type { ColumnType } from '../../hub/entities.ts';
import type { Dialect, Warehouse, WarehouseSession } from '../dialect.ts';

/**
 * History in Snowflake: the same apply as on PostgreSQL, loaded with PUT + COPY INTO from the
 * staged gzip'd COPY-text files. One session is one Snowflake connection (temporary tables and
 * transactions live on it), opened for the session and destroyed after it.
 */

const TYPES: Record<ColumnType, string> = {
  text: 'VARCHAR',
  integer: 'NUMBER(10,0)',
  numeric: 'NUMBER(14,2)',
  date: 'DATE',
  timestamptz: 'TIMESTAMP_TZ(6)',
  boolean: 'BOOLEAN',
};

const ISO_UTC = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;

/** A timestamp literal with an explicit format, so no account or session input format can reinterpret it. */
function timestampLiteral(iso: string): string {
  const m = ISO_UTC.exec(iso);
  if (!m) throw new PermanentError(`not an ISO-8601 UTC instant: '${iso}'`);
  return `to_timestamp_tz('${m[1]} ${m[2]}.${(m[3] ?? '').padEnd(9, '0')} +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')`;
}

export const snowflakeDialect: Dialect = {
  name: 'snowflake',
  // Upper case, because the shared SQL also names columns unquoted (valid_from, tenant_id,
  // row_hash, ...), which Snowflake resolves in upper case: a lower-case quoted "tenant_id"
  // would be another column than the unquoted tenant_id of the next statement. Quoted upper
  // case is the same name either way, keeps reserved words safe, and reads naturally to
  // Snowflake users (select tenant_id from clients_history works without quotes).
  id: (name) => `"${name.toUpperCase().replaceAll('"', '""')}"`,
  // Snowflake string literals treat backslash as an escape: doubled first, then the quotes.
  text: (value) => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`,
  timestamp: timestampLiteral,
  type: (t) => TYPES[t],
  timestampType: 'TIMESTAMP_TZ(6)',
  bigintType: 'NUMBER(19,0)',
  // The hashes are lower-case hex; UPPER keeps the hex format model from depending on case rules.
  int60: (h) => `TO_NUMBER(UPPER(SUBSTR(${h}, 1, 15)), 'XXXXXXXXXXXXXXX')`,
  // Temporary tables have no Fail-safe and vanish with the session: staging costs no storage history.
  createTemp: (table, columns) => `create temporary table ${table} (${columns})`,
  addColumn: (table, column, type) => `alter table ${table} add column if not exists ${column} ${type}`,
  // Without COPY GRANTS, Snowflake drops the view's grants on every replace.
  replaceView: (view, select) => `create or replace view ${view} copy grants as ${select}`,
};

/** The part of a snowflake-sdk Connection this module uses; tests pass their own. */
export interface SnowflakeConnectionLike {
  connectAsync(): Promise<unknown>;
  execute(options: { sqlText: string; streamResult?: boolean; complete: (err: Error | undefined, statement: unknown, rows?: unknown[]) => void }): unknown;
  destroy(callback: (err: Error | undefined) => void): void;
}

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
  /** Returns an unconnected connection; default snowflake-sdk's createConnection with the settings above. */
  connect?: () => SnowflakeConnectionLike | Promise<SnowflakeConnectionLike>;
}

const STAGE_NAME = /^[A-Za-z_][A-Za-z0-9_$]*(\.[A-Za-z_][A-Za-z0-9_$]*){0,2}$/;

/** The SNOWFLAKE_* settings as options; null when SNOWFLAKE_ACCOUNT is unset (Snowflake not configured). */
export function snowflakeOptionsFromEnv(env: Record<string, string | undefined>): SnowflakeOptions | null {
  const value = (name: string) => {
    const v = env[name]?.trim();
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
  if (!options.password && !options.privateKeyPath)
    throw new Error('SNOWFLAKE_ACCOUNT is set but neither SNOWFLAKE_PASSWORD nor SNOWFLAKE_PRIVATE_KEY_PATH is');
  return options;
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

/** Result rows keyed in lower case: Snowflake returns unquoted aliases (n, change_type) in upper case. */
function lowerKeys(row: unknown): Record<string, unknown> {
  if (typeof row !== 'object' || row === null) return {};
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v]));
}

function execute(conn: SnowflakeConnectionLike, sqlText: string): Promise<Record<string, unknown>[]> {
  return new Promise((resolve, reject) => {
    conn.execute({
      sqlText,
      // Every result here is small (aggregates, COPY and PUT reports): buffered, not streamed.
      streamResult: false,
      complete: (err, _statement, rows) => {
        if (!err) return resolve((rows ?? []).map(lowerKeys));
        const excerpt = sqlText.length > 300 ? `${sqlText.slice(0, 300)}...` : sqlText;
        reject(Object.assign(err, { message: `${err.message}\n  in Snowflake statement: ${excerpt}` }));
      },
    });
  });
}

function destroy(conn: SnowflakeConnectionLike): Promise<void> {
  return new Promise((resolve) => conn.destroy(() => resolve()));
}

/**
 * The stage folder of one load. `attempt` is unique per run, scope and try; COPY skips file
 * names it loaded in the last 64 days, so a folder must never be reused by another try.
 * Characters a stage path cannot carry unquoted are replaced, and then a digest of the original
 * keeps two attempts that differ only in those characters apart.
 */
export function stagePath(attempt: string): string {
  const safe = attempt
    .split('/')
    .filter(Boolean)
    .map((s) => s.replace(/[^A-Za-z0-9_-]/g, '_'))
    .join('/');
  if (!safe) throw new PermanentError(`an empty attempt name cannot name a stage path`);
  return safe === attempt ? `hubflow/${safe}` : `hubflow/${safe}-${createHash('sha256').update(attempt).digest('hex').slice(0, 10)}`;
}

/**
 * CSV options that read PostgreSQL's COPY text format: tab-separated, unquoted, `\N` for null,
 * backslash escapes. Unenclosed fields are unescaped with the backslash (`\\` `\t` `\n` `\r`)
 * and `\N` is matched before unescaping, which is also Snowflake's default pairing; an empty
 * field stays ''. Residual risk: PostgreSQL also writes backspace, form feed and vertical tab
 * as `\b` `\f` `\v`; if Snowflake did not decode one of those, the value would land with the
 * escape spelled out while its row hash (computed on the hub's bytes) still matched. The
 * live test round-trips tab, newline, backslash and quotes; those three control characters
 * are not expected in hub data.
 */
export const COPY_TEXT_FORMAT = String.raw`FILE_FORMAT = (TYPE = CSV FIELD_DELIMITER = '\t' RECORD_DELIMITER = '\n' FIELD_OPTIONALLY_ENCLOSED_BY = NONE ESCAPE_UNENCLOSED_FIELD = '\\' NULL_IF = ('\\N') EMPTY_FIELD_AS_NULL = FALSE ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE TRIM_SPACE = FALSE COMPRESSION = GZIP DATE_FORMAT = 'YYYY-MM-DD' TIMESTAMP_FORMAT = AUTO)`;

/**
 * Session settings every statement relies on. TIMESTAMP_FORMAT = AUTO defers to the session's
 * TIMESTAMP_INPUT_FORMAT, so an account-wide custom format must not leak in: AUTO recognises
 * PostgreSQL's `2025-12-28 10:00:00+00` and `2025-12-28 10:00:00.123456+00`. The output formats
 * make `cast(... as text)` (change log, reconciliation keys) lossless and close to PostgreSQL's.
 */
function sessionSettings(queryTag: string): string[] {
  const d = snowflakeDialect;
  return [
    `ALTER SESSION SET TIMEZONE = 'UTC'`,
    `ALTER SESSION SET QUERY_TAG = ${d.text(queryTag)}`,
    `ALTER SESSION SET TIMESTAMP_INPUT_FORMAT = 'AUTO'`,
    `ALTER SESSION SET DATE_OUTPUT_FORMAT = 'YYYY-MM-DD'`,
    `ALTER SESSION SET TIMESTAMP_TZ_OUTPUT_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF6TZH'`,
    // An UPDATE ... FROM joined to two change rows for one history row must fail, not pick one.
    `ALTER SESSION SET ERROR_ON_NONDETERMINISTIC_UPDATE = TRUE`,
  ];
}

const text = (v: unknown) => (v === null || v === undefined ? '' : String(v));

/** Checks COPY's per-file report and returns the rows Snowflake says it loaded. */
export function copiedRows(rows: Record<string, unknown>[], fileName: string, location: string): number {
  const files = rows.filter((r) => r.file !== undefined);
  if (!files.length) {
    // "Copy executed with 0 files processed.": the file was skipped as already loaded, or is not there.
    throw new RetryableError(
      `COPY INTO from ${location} loaded no file (Snowflake: '${text(rows[0]?.status)}'); a file name loaded in the last 64 days is skipped silently, so nothing is applied`,
    );
  }
  let loaded = 0;
  for (const r of files) {
    const status = text(r.status);
    if (status === 'LOAD_SKIPPED') {
      throw new RetryableError(`COPY INTO skipped ${text(r.file)} from ${location} (LOAD_SKIPPED); nothing is applied`);
    }
    if (status !== 'LOADED' || Number(r.rows_parsed) !== Number(r.rows_loaded)) {
      const error = r.first_error ? `: ${text(r.first_error)} (line ${text(r.first_error_line)}, column ${text(r.first_error_column_name)})` : '';
      throw new PermanentError(
        `COPY INTO read ${text(r.file)} from ${location} as ${status}, ${text(r.rows_loaded)} of ${text(r.rows_parsed)} rows loaded${error}`,
      );
    }
    loaded += Number(r.rows_loaded);
  }
  if (!files.some((r) => text(r.file).endsWith(fileName))) {
    throw new RetryableError(`COPY INTO from ${location} reported ${files.map((r) => text(r.file)).join(', ')} but not ${fileName}`);
  }
  return loaded;
}

/** Snowflake, one connection per session; tables are `"<DATABASE>"."<SCHEMA>"."<NAME>"`. */
export function openSnowflakeWarehouse(options: SnowflakeOptions): Warehouse {
  const d = snowflakeDialect;
  if (options.stage !== undefined && !STAGE_NAME.test(options.stage))
    throw new PermanentError(`Snowflake stage '${options.stage}' is not a plain (optionally qualified) name`);
  const stageRoot = options.stage ? `@${options.stage}` : '@~';
  const queryTag = options.queryTag ?? 'hubflow';
  const connect = options.connect ?? (() => createDriverConnection(options));
  const live = new Set<SnowflakeConnectionLike>();

  function sessionOn(conn: SnowflakeConnectionLike, state: { inTransaction: boolean }): WarehouseSession {
    const run = async (sql: string) => {
      const rows = await execute(conn, sql);
      const verb = sql.trimStart().slice(0, 16).toLowerCase();
      if (/^(begin|start transaction)\b/.test(verb)) state.inTransaction = true;
      else if (/^(commit|rollback)\b/.test(verb)) state.inTransaction = false;
      return rows;
    };
    return {
      dialect: d,
      async query<R>(sql: string) {
        return (await run(sql)) as R[];
      },
      async load(table, columns, file, attempt) {
        const absolute = path.resolve(file);
        if (absolute.includes("'")) throw new PermanentError(`cannot PUT ${absolute}: a quote in the path`);
        const fileName = path.basename(absolute);
        const location = `${stageRoot}/${stagePath(attempt)}/`;
        // PUT is recognised by its first three characters: nothing may precede it.
        const put = await run(`PUT 'file://${absolute}' ${location} AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP OVERWRITE = TRUE`);
        const uploaded = put.filter((r) => r.status === 'UPLOADED').length;
        if (uploaded !== 1) {
          throw new RetryableError(
            `PUT of ${absolute} to ${location}: ${put.map((r) => `${text(r.status)} ${text(r.message)}`.trim()).join('; ') || 'no report'}`,
          );
        }
        try {
          const report = await run(
            `COPY INTO ${table} (${columns.map(d.id).join(', ')}) FROM ${location} FILES = (${d.text(fileName)}) ${COPY_TEXT_FORMAT} ON_ERROR = ABORT_STATEMENT PURGE = TRUE`,
          );
          return copiedRows(report, fileName, location);
        } catch (err) {
          // PURGE only removes what loaded; a failed load would leave its upload in the stage for good.
          await run(`REMOVE ${location}`).catch(() => undefined);
          throw err;
        }
      },
    };
  }

  return {
    dialect: d,
    schema: `${options.database.toUpperCase()}.${options.schema.toUpperCase()}`,
    table: (name) => `${d.id(options.database)}.${d.id(options.schema)}.${d.id(name)}`,
    async session(fn) {
      const conn = await connect();
      await conn.connectAsync();
      live.add(conn);
      const state = { inTransaction: false };
      try {
        for (const statement of sessionSettings(queryTag)) await execute(conn, statement);
        return await fn(sessionOn(conn, state));
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
