import { PermanentError } from '../../core/errors.ts';
import type { Dialect } from '../contract.ts';
import { BIGINT_TYPE, TIMESTAMP_TYPE, TYPES } from './types.ts';

const ISO_UTC = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?Z$/;

/** A timestamp literal with an explicit format, so no account or session input format can reinterpret it. */
function timestampLiteral(iso: string): string {
  const m = ISO_UTC.exec(iso);
  if (!m) throw new PermanentError(`not an ISO-8601 UTC instant: '${iso}'`);
  return `to_timestamp_tz('${m[1]} ${m[2]}.${(m[3] ?? '').padEnd(9, '0')} +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')`;
}

// Snowflake string literals treat backslash as an escape: doubled first, then the quotes.
const text = (value: string) => `'${value.replaceAll('\\', '\\\\').replaceAll("'", "''")}'`;

export const snowflakeDialect: Dialect = {
  // Upper case, because the shared SQL also names columns unquoted (valid_from, tenant_id,
  // row_hash, ...), which Snowflake resolves in upper case: a lower-case quoted "tenant_id"
  // would be another column than the unquoted tenant_id of the next statement. Quoted upper
  // case is the same name either way, keeps reserved words safe, and reads naturally to
  // Snowflake users (select tenant_id from clients_history works without quotes).
  id: (name) => `"${name.toUpperCase().replaceAll('"', '""')}"`,
  text,
  timestamp: timestampLiteral,
  // The session's TIMEZONE is UTC (see sessionSettings), so the offset is always Z.
  isoText: (column) => `to_varchar(${column}, 'YYYY-MM-DD"T"HH24:MI:SS.FF6"Z"')`,
  type: (t) => TYPES[t],
  timestampType: TIMESTAMP_TYPE,
  bigintType: BIGINT_TYPE,
  // The hashes are lower-case hex; UPPER keeps the hex format model from depending on case rules.
  int60: (h) => `TO_NUMBER(UPPER(SUBSTR(${h}, 1, 15)), 'XXXXXXXXXXXXXXX')`,
  // The database and schema are the account's, named in the settings.
  createSchema: () => [],
  // Temporary tables have no Fail-safe and vanish with the session: staging costs no storage history.
  createTemp: (table, columns) => `create temporary table ${table} (${columns})`,
  addColumn: (table, column, type) => `alter table ${table} add column if not exists ${column} ${type}`,
  // Without COPY GRANTS, Snowflake drops the view's grants on every replace.
  replaceView: (view, select) => `create or replace view ${view} copy grants as ${select}`,
  // Standard tables have no indexes and enforce no unique keys: the apply's own checks hold those.
  createIndex: () => [],
  dropKey: () => [],
  probeByKey: (statements) => statements,
};

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
export function sessionSettings(queryTag: string): string[] {
  return [
    `ALTER SESSION SET TIMEZONE = 'UTC'`,
    `ALTER SESSION SET QUERY_TAG = ${text(queryTag)}`,
    `ALTER SESSION SET TIMESTAMP_INPUT_FORMAT = 'AUTO'`,
    `ALTER SESSION SET DATE_OUTPUT_FORMAT = 'YYYY-MM-DD'`,
    `ALTER SESSION SET TIMESTAMP_TZ_OUTPUT_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF6TZH'`,
    // An UPDATE ... FROM joined to two change rows for one history row must fail, not pick one.
    `ALTER SESSION SET ERROR_ON_NONDETERMINISTIC_UPDATE = TRUE`,
  ];
}

/** The PUT of one staged file: recognised by its first three characters, so nothing may precede it. */
export const putSql = (absolute: string, location: string) =>
  `PUT 'file://${absolute}' ${location} AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP OVERWRITE = TRUE`;

/** COPY INTO of one uploaded file; PURGE removes it from the stage once loaded. */
export const copyIntoSql = (table: string, columns: readonly string[], location: string, fileName: string) =>
  `COPY INTO ${table} (${columns.map(snowflakeDialect.id).join(', ')}) FROM ${location} FILES = (${text(fileName)}) ${COPY_TEXT_FORMAT} ON_ERROR = ABORT_STATEMENT PURGE = TRUE`;
