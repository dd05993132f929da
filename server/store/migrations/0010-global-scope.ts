import { sql, type Kysely } from 'kysely';

/**
 * The global scope (the reference data, of no tenant) has one name in every table: '_global'
 * (hub/tenant-id.ts GLOBAL_SCOPE), which the tenant-id rule refuses, so no tenant can be named
 * so. Reconciliations recorded before named it ''. The warehouse's ledger is renamed by the
 * history DDL (tasks/history/sql.ts), which the warehouse runs, not the store.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`update reconciliations set tenant_id = '_global' where tenant_id = ''`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`update reconciliations set tenant_id = '' where tenant_id = '_global'`.execute(db);
}
