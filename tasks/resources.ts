import path from 'node:path';
import type { Config } from '../core/config.ts';
import type { HubDb } from '../hub/db.ts';
import type { Warehouse } from '../warehouse/contract.ts';
import { adapterFor } from '../warehouse/adapters.ts';

/**
 * How the bundled resources open (dags/resources.ts declares them): each from the few settings
 * it names. The commands that read the hub or the warehouse themselves use openConnections.
 */

/** The hub: a pool and the schema its tables are in. */
export interface Hub {
  readonly db: HubDb;
  readonly schema: string;
}

export type HubSettings = Pick<Config, 'HUBFLOW_HUB_URL' | 'HUBFLOW_HUB_SCHEMA'> & { HUBFLOW_DATABASE_URL: string };

/**
 * HUBFLOW_HUB_URL, else the metadata database (where the demo hub lives). The database client
 * is loaded when a task first opens the hub, not when a DAG file naming it is loaded, so
 * `hubflow dags list` stays quick.
 */
export async function openHubHandle(s: HubSettings): Promise<Hub> {
  const { openHub } = await import('../hub/db.ts');
  return { db: openHub(s.HUBFLOW_HUB_URL ?? s.HUBFLOW_DATABASE_URL), schema: s.HUBFLOW_HUB_SCHEMA };
}

export type WarehouseSettings = Pick<
  Config,
  | 'HUBFLOW_WAREHOUSE'
  | 'HUBFLOW_WAREHOUSE_URL'
  | 'HUBFLOW_WAREHOUSE_SCHEMA'
  | 'SNOWFLAKE_ACCOUNT'
  | 'SNOWFLAKE_USER'
  | 'SNOWFLAKE_PASSWORD'
  | 'SNOWFLAKE_PRIVATE_KEY_PATH'
  | 'SNOWFLAKE_WAREHOUSE'
  | 'SNOWFLAKE_DATABASE'
  | 'SNOWFLAKE_SCHEMA'
  | 'SNOWFLAKE_ROLE'
  | 'SNOWFLAKE_CONNECT_TIMEOUT_MS'
> & { HUBFLOW_DATABASE_URL: string };

/** The settings the warehouse opens with: the only place the Snowflake credentials go. */
export const WAREHOUSE_SETTINGS = [
  'HUBFLOW_WAREHOUSE',
  'HUBFLOW_WAREHOUSE_URL',
  'HUBFLOW_WAREHOUSE_SCHEMA',
  'HUBFLOW_DATABASE_URL',
  'SNOWFLAKE_ACCOUNT',
  'SNOWFLAKE_USER',
  'SNOWFLAKE_PASSWORD',
  'SNOWFLAKE_PRIVATE_KEY_PATH',
  'SNOWFLAKE_WAREHOUSE',
  'SNOWFLAKE_DATABASE',
  'SNOWFLAKE_SCHEMA',
  'SNOWFLAKE_ROLE',
  'SNOWFLAKE_CONNECT_TIMEOUT_MS',
] as const satisfies readonly (keyof WarehouseSettings)[];

/** PostgreSQL (HUBFLOW_WAREHOUSE_URL, else the metadata database) or Snowflake. */
export async function openWarehouseHandle(s: WarehouseSettings): Promise<Warehouse> {
  const { openWarehouse } = await import('../warehouse/open.ts');
  return openWarehouse(s);
}

/** A folder under HUBFLOW_HOME unless its own setting names one. */
export const folderOf = (home: string, own: string | undefined, name: string): string => path.resolve(own ?? path.join(path.resolve(home), name));

export const STAGING_SETTINGS = [
  'HUBFLOW_HOME',
  'HUBFLOW_STAGING_DIR',
  'HUBFLOW_STAGING_COMPRESSION',
  'HUBFLOW_WAREHOUSE',
  'HUBFLOW_MASS_DELETE_SHARE',
] as const;

/** Where bulk data waits between tasks, and the settings that say how it is written and applied. */
export interface Staging {
  readonly dir: string;
  /** How snapshots are staged: the configured compression, unless the warehouse's load needs another. */
  readonly compression: Config['HUBFLOW_STAGING_COMPRESSION'];
  /** The share of a table's current rows one load may delete before the mass-delete guard stops it. */
  readonly massDeleteShare: number;
}

export function openStaging(s: Pick<Config, (typeof STAGING_SETTINGS)[number]>): Staging {
  return {
    dir: folderOf(s.HUBFLOW_HOME, s.HUBFLOW_STAGING_DIR, 'staging'),
    compression: adapterFor(s.HUBFLOW_WAREHOUSE).stagedCompression(s.HUBFLOW_STAGING_COMPRESSION),
    massDeleteShare: s.HUBFLOW_MASS_DELETE_SHARE,
  };
}

export const OUTBOX_SETTINGS = ['HUBFLOW_HOME', 'HUBFLOW_OUTBOX_DIR', 'HUBFLOW_FILING_SUBMITTERS'] as const;

/** Where filings are delivered, with the submitters' settings file. */
export interface Outbox {
  readonly dir: string;
  readonly config: Pick<Config, 'HUBFLOW_FILING_SUBMITTERS'>;
}

export function openOutbox(s: Pick<Config, (typeof OUTBOX_SETTINGS)[number]>): Outbox {
  return { dir: folderOf(s.HUBFLOW_HOME, s.HUBFLOW_OUTBOX_DIR, 'outbox'), config: { HUBFLOW_FILING_SUBMITTERS: s.HUBFLOW_FILING_SUBMITTERS } };
}
