import { sql, type Kysely } from 'kysely';

/**
 * What each try of a task logged (ctx.log) and printed (stdout, stderr, console), one row per
 * line in the order it was written. Keyed by instance and try, not by attempt row: a try number
 * is never reused, a cleared instance counting on from its last try. No foreign key, so that
 * writing a line never waits on the instance's row and a mapped expansion cleared away leaves
 * its lines to the retention rule. The index on `at` is the one the housekeeping prunes by.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`
    create table task_logs (
      ti_id bigint not null,
      try_number integer not null,
      seq integer not null,
      at timestamptz not null,
      level text not null,
      line text not null,
      primary key (ti_id, try_number, seq)
    )`.execute(db);
  await sql`create index task_logs_at on task_logs (at)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop table task_logs`.execute(db);
}
