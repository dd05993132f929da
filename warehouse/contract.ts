import type { ColumnType } from '../hub/entities.ts';

/**
 * The warehouse behind one contract, kysely's way: each dialect folder (postgres/, snowflake/)
 * has the same role files: `dialect.ts` opens the warehouse, `driver.ts` runs a session on one
 * connection, `sql.ts` spells SQL, `types.ts` maps the hub's column types, `adapter.ts` says
 * what the warehouse can and cannot do. The history load runs one algorithm and one SQL shape
 * on every dialect: what differs is asked of the dialect here, never decided by its name.
 */

/** Joins statements sent as one query; the comment marks each boundary, which a ';' inside a DO block does not. */
export const STATEMENT_BATCH_SEPARATOR = ';\n-- next statement\n';

/**
 * Runs statements in order and answers the last one's rows: in one round trip where the
 * warehouse takes several statements per query, since on a busy warehouse each round trip is
 * a wait in its CPU queue; one by one elsewhere.
 */
export async function runAll<R = Record<string, unknown>>(s: WarehouseSession, wh: Warehouse, statements: string[]): Promise<R[]> {
  if (wh.adapter.batchesStatements) return s.query<R>(statements.join(STATEMENT_BATCH_SEPARATOR));
  let rows: R[] = [];
  for (const statement of statements) rows = await s.query<R>(statement);
  return rows;
}

/** How a dialect spells the SQL the shared history statements are built from. */
export interface Dialect {
  /** A quoted identifier. */
  id(name: string): string;
  /** A string literal, escaped for this dialect. */
  text(value: string): string;
  /** A timestamp literal from an ISO-8601 UTC string with microseconds. */
  timestamp(iso: string): string;
  /** A timestamp column as ISO-8601 UTC text with microseconds (`2025-12-28T10:00:00.000000Z`). */
  isoText(column: string): string;
  /** The warehouse column type of a hub column type. */
  type(type: ColumnType): string;
  readonly timestampType: string;
  readonly bigintType: string;
  /** The first 60 bits of a 64-hex-digit hash as an integer, for order-independent sums. */
  int60(hashExpr: string): string;
  /** Creates the history schema; none where the schema is the account's, named in the settings. */
  createSchema(schema: string): string[];
  /** A table that lives as long as the session: staging data never outlives its attempt. */
  createTemp(table: string, columns: string): string;
  /** `alter table ... add column if not exists` in this dialect's words. */
  addColumn(table: string, column: string, type: string): string;
  /** Creates or replaces a view, keeping the grants analysts' roles have on it. */
  replaceView(view: string, select: string): string;
  /**
   * An index, if the warehouse has them; none where it has no indexes (the apply's own checks
   * then hold what a unique index would).
   */
  createIndex(table: string, index: string, columns: string, options?: { unique?: boolean; where?: string }): string[];
  /** Drops a table's enforced key; none where keys are declared but never enforced. */
  dropKey(table: string, key: string): string[];
  /**
   * Statements that join a small batch (a temporary table, without statistics) to a large keyed
   * table, made to find each batch key through the table's index: their cost then follows the
   * batch, not the table. PostgreSQL's planner, guessing the batch's size, would otherwise hash
   * or scan the whole table. As given where the warehouse plans its own way.
   */
  probeByKey(statements: string[]): string[];
}

/** Compressions of a staged COPY-text file. */
export type StagedCompression = 'none' | 'gzip' | 'brotli';

/** What a warehouse can do, and how it does what every warehouse must (kysely's DialectAdapter). */
export interface Adapter {
  /**
   * The compression the extract writes, given the configured one: a warehouse whose load reads
   * only some compressions answers one of those.
   */
  stagedCompression(configured: StagedCompression): StagedCompression;
  /**
   * Serialises loads of one scope: `prepare` runs before BEGIN (it may commit, and must be
   * harmless when repeated), `acquire` is the transaction's first statement and holds the lock
   * until COMMIT or ROLLBACK.
   */
  scopeLock(lock: ScopeLock): { prepare: string[]; acquire: string };
  /** Whether one query may carry several statements joined by STATEMENT_BATCH_SEPARATOR (answering the last one's rows): a load then waits on fewer round trips. */
  batchesStatements?: boolean;
  /**
   * Whether the schema step rewrites rows an older hubflow wrote (the global scope once spelled
   * '') on every load: cheap where a statement that changes nothing costs nothing; where each
   * statement costs warehouse time (Snowflake) the rewrite is run once by hand instead.
   */
  readonly rewritesOldRows: boolean;
  /** Tenant access: each reader's roles see only the rows of the tenants mapped to them. */
  readonly access: TenantAccess;
}

/** The relations tenant access fences, each qualified and quoted. */
export interface FenceTarget {
  /** The history schema (database.schema on Snowflake). */
  schema: string;
  /** The mapping of roles to tenants: role_name, tenant_id ('*': every tenant), granted_by, granted_at. */
  mapping: string;
  /** Tenant-keyed tables (a `tenant_id` column): history, changes, the ledger, approvals, locks. */
  tables: { name: string; table: string }[];
  /** Views over those tables (`<entity>_current`). */
  views: string[];
}

/**
 * Tenant access in the warehouse's own access controls, so a reader outside hubflow (an
 * analyst's role, a BI tool) is held to its tenants: a row of a tenant-keyed relation is
 * visible when its tenant is the global scope's or one mapped to a role of the reader; a role
 * with no mapping reads no row. Every statement is safe to repeat.
 */
export interface TenantAccess {
  /**
   * Whether the schema step fences every table it makes: where the tables' owner (the loads)
   * is not bound by the fence, it costs the loads nothing. Otherwise only the grant command
   * fences, as it must also let the loader's own role through.
   */
  readonly onSchema: boolean;
  /** Statements that bind every tenant-keyed relation to the mapping. */
  fence(t: FenceTarget): string[];
  /**
   * A query for the tables already bound (column `name`, the table's name), where binding a
   * table twice is an error; null where `fence` is repeatable by itself.
   */
  boundSql(t: FenceTarget): string | null;
  /** Binds one table not yet bound (none where `fence` binds them). */
  bind(t: FenceTarget, table: { name: string; table: string }): string[];
  /** Lets `role` read the history schema and maps it to `tenant`. */
  grant(t: FenceTarget, a: { role: string; tenant: string; by: string }): string[];
  /** Removes the mapping of `role` to `tenant`. */
  revoke(t: FenceTarget, a: { role: string; tenant: string }): string[];
  /** A role's name as the warehouse keeps it (Snowflake upper-cases unquoted names). */
  roleName(role: string): string;
}

export interface ScopeLock {
  /** The qualified lock table (one row per scope), for a warehouse without advisory locks. */
  table: string;
  /** The scope's key (the tenant, '' for the global scope). */
  key: string;
  runId: number;
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
  /**
   * Where the warehouse can stream rows into a table of this session straight from memory
   * (PostgreSQL's COPY FROM STDIN): one line of COPY text per row (`canonicalEncoding`). Absent
   * elsewhere: the rows are then written as INSERT statements spelled by the dialect.
   */
  copyText?(table: string, columns: readonly string[], lines: readonly string[]): Promise<number>;
}

export interface Warehouse {
  readonly dialect: Dialect;
  readonly adapter: Adapter;
  /** Schema (PostgreSQL) or database.schema (Snowflake) holding the history tables. */
  readonly schema: string;
  /** A qualified table name in the history schema. */
  table(name: string): string;
  /** Runs `fn` on one connection, released afterwards whatever happens. */
  session<T>(fn: (s: WarehouseSession) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
