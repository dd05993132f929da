import { createHash } from 'node:crypto';
import path from 'node:path';
import { PermanentError, RetryableError } from '../../core/errors.ts';
import type { WarehouseSession } from '../contract.ts';
import { copyIntoSql, putSql, snowflakeDialect as d } from './sql.ts';

/** The part of a snowflake-sdk Connection this module uses; tests pass their own. */
export interface SnowflakeConnectionLike {
  connectAsync(): Promise<unknown>;
  execute(options: { sqlText: string; streamResult?: boolean; complete: (err: Error | undefined, statement: unknown, rows?: unknown[]) => void }): unknown;
  destroy(callback: (err: Error | undefined) => void): void;
}

/** Result rows keyed in lower case: Snowflake returns unquoted aliases (n, change_type) in upper case. */
function lowerKeys(row: unknown): Record<string, unknown> {
  if (typeof row !== 'object' || row === null) return {};
  return Object.fromEntries(Object.entries(row).map(([k, v]) => [k.toLowerCase(), v]));
}

export function execute(conn: SnowflakeConnectionLike, sqlText: string): Promise<Record<string, unknown>[]> {
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

export function destroy(conn: SnowflakeConnectionLike): Promise<void> {
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

/**
 * A session on one open connection: statements one at a time, staged files uploaded with PUT
 * to the attempt's stage folder and loaded with COPY INTO. `state` follows the transaction, so
 * the connection's owner can roll back what a failure left open.
 */
export function sessionOn(conn: SnowflakeConnectionLike, stageRoot: string, state: { inTransaction: boolean }): WarehouseSession {
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
      const put = await run(putSql(absolute, location));
      const uploaded = put.filter((r) => r.status === 'UPLOADED').length;
      if (uploaded !== 1) {
        throw new RetryableError(
          `PUT of ${absolute} to ${location}: ${put.map((r) => `${text(r.status)} ${text(r.message)}`.trim()).join('; ') || 'no report'}`,
        );
      }
      try {
        return copiedRows(await run(copyIntoSql(table, columns, location, fileName)), fileName, location);
      } catch (err) {
        // PURGE only removes what loaded; a failed load would leave its upload in the stage for good.
        await run(`REMOVE ${location}`).catch(() => undefined);
        throw err;
      }
    },
  };
}
