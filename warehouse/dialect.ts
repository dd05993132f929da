import type { ColumnType } from '../hub/entities.ts';

/**
 * The warehouse behind one interface, so the history load runs the same algorithm and the same
 * SQL shape on PostgreSQL (the embedded default) and on Snowflake. A dialect says only what
 * differs in spelling; a session is one connection, because temporary tables and transactions
 * live on a connection (never spread an apply over a pool).
 */

export interface Dialect {
  readonly name: 'postgres' | 'snowflake';
  /** A quoted identifier. */
  id(name: string): string;
  /** A string literal, escaped for this dialect. */
  text(value: string): string;
  /** A timestamp literal from an ISO-8601 UTC string with microseconds. */
  timestamp(iso: string): string;
  type(type: ColumnType): string;
  readonly timestampType: string;
  readonly bigintType: string;
  /** The first 60 bits of a 64-hex-digit hash as an integer, for order-independent sums. */
  int60(hashExpr: string): string;
  /** A table that lives as long as the session: staging data never outlives its attempt. */
  createTemp(table: string, columns: string): string;
  /** `alter table ... add column if not exists` in this dialect's words. */
  addColumn(table: string, column: string, type: string): string;
  /** Creates or replaces a view, keeping the grants analysts' roles have on it. */
  replaceView(view: string, select: string): string;
}

export interface WarehouseSession {
  readonly dialect: Dialect;
  query<R = Record<string, unknown>>(sql: string): Promise<R[]>;
  /**
   * Bulk-loads a staged COPY-text file (plain, gzip or Brotli) into a table of this session and returns the rows
   * the warehouse says it loaded. `attempt` names the load uniquely (run, scope, try), so a
   * retry never meets the files or tables of an earlier try.
   */
  load(table: string, columns: readonly string[], file: string, attempt: string): Promise<number>;
}

export interface Warehouse {
  readonly dialect: Dialect;
  /** Schema (PostgreSQL) or database.schema (Snowflake) holding the history tables. */
  readonly schema: string;
  /** A qualified table name in the history schema. */
  table(name: string): string;
  /** Runs `fn` on one connection, released afterwards whatever happens. */
  session<T>(fn: (s: WarehouseSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
