import { Migrator, sql, type Kysely, type Migration } from 'kysely';
import { openPostgres } from '../../core/pg.ts';
import * as initial from './migrations/0001-initial.ts';
import * as engineFunctions from './migrations/0002-engine-functions.ts';
import * as installation from './migrations/0003-installation.ts';
import * as rejectsAndReconciliations from './migrations/0004-rejects-and-reconciliations.ts';
import * as targetedCompletion from './migrations/0005-targeted-completion.ts';
import * as probedCompletion from './migrations/0006-probed-completion.ts';
import * as cancelledRuns from './migrations/0007-cancelled-runs.ts';
import * as rejectRule from './migrations/0008-reject-rule.ts';
import * as engineSqlFiles from './migrations/0009-engine-sql-files.ts';
import * as globalScope from './migrations/0010-global-scope.ts';
import * as attemptsEndedInPlace from './migrations/0011-attempts-ended-in-place.ts';
import * as integrationBreaches from './migrations/0012-integration-breaches.ts';
import * as taskLogs from './migrations/0013-task-logs.ts';
import * as syncLatency from './migrations/0014-sync-latency.ts';
import * as deadLetterHistory from './migrations/0015-dead-letter-history.ts';
import { applyEngineFunctions } from './engine-sql.ts';
import type { StoreSchema } from './schema.ts';

export type Store = Kysely<StoreSchema>;

export const MIGRATIONS: Record<string, Migration> = {
  '0001-initial': initial,
  '0002-engine-functions': engineFunctions,
  '0003-installation': installation,
  '0004-rejects-and-reconciliations': rejectsAndReconciliations,
  '0005-targeted-completion': targetedCompletion,
  '0006-probed-completion': probedCompletion,
  '0007-cancelled-runs': cancelledRuns,
  '0008-reject-rule': rejectRule,
  '0009-engine-sql-files': engineSqlFiles,
  '0010-global-scope': globalScope,
  '0011-attempts-ended-in-place': attemptsEndedInPlace,
  '0012-integration-breaches': integrationBreaches,
  '0013-task-logs': taskLogs,
  '0014-sync-latency': syncLatency,
  '0015-dead-letter-history': deadLetterHistory,
};

/** Opens the metadata store: a pool whose search_path is hubflow's schema. */
export function openStore(databaseUrl: string, schema: string, poolSize = 10): Store {
  // Named after the schema, so an operator can tell installations apart in pg_stat_activity.
  return openPostgres<StoreSchema>(databaseUrl, { poolSize, searchPath: schema, applicationName: `hubflow ${schema}`.slice(0, 63) });
}

/** Creates the schema if needed and applies pending migrations; safe to run from many processes at once. */
export async function migrateStore(db: Store, schema: string): Promise<void> {
  await db.transaction().execute(async (trx) => {
    // Two processes starting together would race on `create schema`; the advisory lock serialises them.
    await sql`select pg_advisory_xact_lock(hashtext('hubflow-migrate'))`.execute(trx);
    await sql`create schema if not exists ${sql.id(schema)}`.execute(trx);
  });
  const migrator = new Migrator({
    db,
    migrationTableSchema: schema,
    provider: { getMigrations: async () => MIGRATIONS },
  });
  const { error, results } = await migrator.migrateToLatest();
  if (error) {
    const failed = results?.find((r) => r.status === 'Error')?.migrationName;
    throw new Error(`store migration ${failed ?? ''} failed: ${(error as Error).message}`, { cause: error });
  }
  // The engine's functions as their files say (see 0009-engine-sql-files.ts for the rule).
  await db.transaction().execute(async (trx) => {
    await sql`select pg_advisory_xact_lock(hashtext('hubflow-migrate'))`.execute(trx);
    await applyEngineFunctions(trx);
  });
}
