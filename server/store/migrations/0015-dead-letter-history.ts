import { sql, type Kysely } from 'kysely';

/**
 * Dead letters outlive the instance they name: clearing a mapped task collapses its expansion,
 * deleting the instances past the first, and their letters (resolved `cleared` or `replayed`)
 * must stay on record. Who resolved a letter is kept beside how.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`alter table dead_letters drop constraint if exists dead_letters_ti_id_fkey`.execute(db);
  await sql`alter table dead_letters alter column ti_id drop not null`.execute(db);
  await sql`alter table dead_letters add constraint dead_letters_ti_id_fkey foreign key (ti_id) references task_instances (id) on delete set null`.execute(db);
  await sql`alter table dead_letters add column resolved_by text`.execute(db);
  await sql`create index dead_letters_run on dead_letters (run_id)`.execute(db);
}

export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index dead_letters_run`.execute(db);
  await sql`alter table dead_letters drop column resolved_by`.execute(db);
  await sql`delete from dead_letters where ti_id is null`.execute(db);
  await sql`alter table dead_letters drop constraint dead_letters_ti_id_fkey`.execute(db);
  await sql`alter table dead_letters alter column ti_id set not null`.execute(db);
  await sql`alter table dead_letters add constraint dead_letters_ti_id_fkey foreign key (ti_id) references task_instances (id) on delete cascade`.execute(db);
}
