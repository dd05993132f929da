import { sql, type Kysely } from 'kysely';

/**
 * Each reject names the rule its record broke (`not_null`, `type`, `max_length`, `enum`,
 * `tenant`, `key` for extracts; a filing's own rule names for filings), beside the field, so
 * rejects can be counted and filtered by rule. Null for rejects stored before. `if not exists`:
 * the column may already be there.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table rejects add column if not exists rule text`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`alter table rejects drop column if exists rule`.execute(db);
}
