import type { Kysely } from 'kysely';
import { openPostgres } from '../core/pg.ts';

/**
 * Connections to a hub. Table and column names come from the entity configuration, so queries
 * are written with `sql` and identifiers from it rather than against a compile-time schema.
 * Reading the hub is snapshot.ts's.
 */
export type HubTables = Record<never, never>;
export type HubDb = Kysely<HubTables>;

export function openHub(url: string, poolSize = 4): HubDb {
  return openPostgres<HubTables>(url, { poolSize, plainDates: true, applicationName: 'hubflow-hub' });
}
