import { sql, type Kysely } from 'kysely';

/**
 * One row naming this store. Its id goes into every BullMQ job id, so a store that is created
 * afresh (a reset database, a new embedded cluster) next to a Redis that still holds jobs of
 * the old one never mistakes an old job for its own: BullMQ ignores an add whose id exists.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create table installation (
    id text primary key default substr(md5(random()::text || clock_timestamp()::text), 1, 8),
    created_at timestamptz not null default now(),
    singleton boolean not null default true unique check (singleton)
  )`.execute(db);
  await sql`insert into installation default values`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table if exists installation`.execute(db);
}
