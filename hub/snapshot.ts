import type pg from 'pg';
import { PermanentError } from '../core/errors.ts';
import type { HubDb } from './db.ts';
import type { Entity } from './entities.ts';

/*
 * The snapshot reader: what tasks read the hub with. The PostgreSQL driver loads when a task
 * reads, not when a DAG that reads is loaded (`hubflow dags list` loads every DAG).
 */

/**
 * Runs `read` on one consistent snapshot of the hub: a REPEATABLE READ READ ONLY transaction,
 * in UTC with ISO dates. `snapshotAt` (ISO-8601 UTC, µs) is read by the statement that takes
 * the snapshot, so every change the snapshot holds happened at or before it; `hubSnapshot` is the
 * same snapshot as PostgreSQL describes it (`pg_current_snapshot()`: xmin:xmax:xip), the
 * watermark an incremental extract starts from (see incremental-extract.ts). A connection whose
 * read failed is closed, never rolled back and pooled: a COPY cut short leaves it mid-protocol,
 * where a ROLLBACK would queue behind the unfinished COPY forever (the session idle in
 * transaction until the task's timeout). Closing it ends the COPY, and PostgreSQL rolls back a
 * transaction whose connection is gone.
 */
export async function inHubSnapshot<T>(hub: HubDb, read: (client: pg.PoolClient, snapshotAt: string, hubSnapshot: string) => Promise<T>): Promise<T> {
  const { poolOf } = await import('../core/pg.ts');
  const client = await poolOf(hub).connect();
  let failure: Error | undefined;
  try {
    await client.query(`begin isolation level repeatable read read only; set local timezone = 'UTC'; set local datestyle = 'ISO, YMD'`);
    const { rows } = await client.query<{ at: string; snap: string }>(
      `select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, pg_current_snapshot()::text as snap`,
    );
    const result = await read(client, rows[0]!.at, rows[0]!.snap);
    await client.query('commit');
    return result;
  } catch (err) {
    failure = err instanceof Error ? err : new Error(String(err));
    throw err;
  } finally {
    client.release(failure);
  }
}

/**
 * Runs a read of the hub; a missing table or schema (no hub seeded, or the wrong
 * HUBFLOW_HUB_URL / HUBFLOW_HUB_SCHEMA) becomes a permanent error that says what to do,
 * instead of a database error retried to no avail.
 */
export async function readingHub<T>(schema: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code === '42P01' || code === '3F000') {
      throw new PermanentError(
        `the hub has no such table (${(err as Error).message}) in schema '${schema}': seed the demo hub with \`hubflow hub seed --tenants 3 --workers 3000\`, or point HUBFLOW_HUB_URL and HUBFLOW_HUB_SCHEMA at your hub`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** A hub column as its catalog describes it. */
export interface HubColumn {
  /** As `format_type` writes it: 'text', 'numeric(14,2)', 'timestamp with time zone', ... */
  type: string;
  nullable: boolean;
}

/**
 * The hub's own columns of an entity's table, by name: extracts compare them with the entity
 * definitions to know which values need checking before a cast. The catalog itself, because
 * information_schema costs tens of milliseconds a call, per tenant and entity.
 */
export async function hubColumns(client: pg.PoolClient, schema: string, entity: Entity): Promise<Map<string, HubColumn>> {
  const { rows } = await client.query<{ name: string; type: string; nullable: boolean }>(
    `select a.attname as name, format_type(a.atttypid, a.atttypmod) as type, not a.attnotnull as nullable
     from pg_attribute a where a.attrelid = to_regclass(quote_ident($1) || '.' || quote_ident($2)) and a.attnum > 0 and not a.attisdropped`,
    [schema, entity.table],
  );
  if (!rows.length) throw new PermanentError(`hub table ${schema}.${entity.table} (entity '${entity.name}') does not exist`);
  return new Map(rows.map((r) => [r.name, { type: r.type, nullable: r.nullable }]));
}
