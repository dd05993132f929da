import type { Kysely } from 'kysely';
import { openPostgres } from '../connections/pg.ts';
import { PermanentError } from '../errors.ts';

/**
 * Connections to a hub. Table and column names come from the entity configuration, so queries
 * are written with `sql` and identifiers from it rather than against a compile-time schema.
 */
export type HubTables = Record<never, never>;
export type HubDb = Kysely<HubTables>;

export function openHub(url: string, poolSize = 4): HubDb {
  return openPostgres<HubTables>(url, { poolSize, plainDates: true, applicationName: 'hubflow-hub' });
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
