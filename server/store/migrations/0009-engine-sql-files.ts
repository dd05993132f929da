import { sql, type Kysely } from 'kysely';
import { applyEngineFunctions } from '../engine-sql.ts';

/*
 * From here on, the engine's functions live in server/store/sql/, one file each with its
 * contract, instead of as whole copies in migrations (0002, 0005, 0006 and 0007 hold the
 * versions before; they stay as they were, since they are the history an old store replays).
 * This migration creates or replaces each function from its file, with the same text as those
 * migrations left.
 *
 * The rule for later changes: edit the .sql file, nothing else. migrateStore applies every
 * function file again at the end of each run (under its lock, idempotently), so a store gets
 * the files' text whether or not a migration ran; no migration repeats a function's text. A
 * change that needs the schema changed first (a new column, say) comes with a migration for
 * the schema; one that changes a function's signature or result columns adds a migration that
 * drops the old function, which the end-of-run pass then creates anew. An older hubflow never
 * puts its files back over a newer store's: the migrator refuses a store that ran migrations
 * it does not know, before the pass.
 *
 * It also gives hubflow_complete_tasks's "has any instance of this task succeeded" probe an
 * index of its own, like the probes for the other states (0006). Without one, the probe read
 * the bitmap of every instance of the task from the (run, task, map index) key: in a mapped
 * fan of 100,000 instances, each completion batch read 100,000 entries per watched task, a
 * cost that grew with the fan's width.
 */
export async function up(db: Kysely<unknown>): Promise<void> {
  await sql`create index task_instances_succeeded on task_instances (run_id, task_id) where state = 'success'`.execute(db);
  await applyEngineFunctions(db);
}

// The functions' text is what 0007 left: only the index goes.
export async function down(db: Kysely<unknown>): Promise<void> {
  await sql`drop index if exists task_instances_succeeded`.execute(db);
}
