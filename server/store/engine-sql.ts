import { readFileSync } from 'node:fs';
import { sql, type QueryExecutorProvider } from 'kysely';

/*
 * The engine's PL/pgSQL functions, one file each under sql/, the way BullMQ keeps its Lua
 * scripts: each file holds the function's current text under a header saying what it takes,
 * returns and locks, and why. The files are read next to this module at run time (the build
 * copies them into dist/).
 */
const FILES = ['start_tasks.sql', 'start_pooled.sql', 'complete_tasks.sql'];

/** Each function's current text: `create or replace function ...`. */
export function engineFunctions(): string[] {
  return FILES.map((file) => readFileSync(new URL(`./sql/${file}`, import.meta.url), 'utf8'));
}

/**
 * Creates or replaces every engine function from its file. Idempotent; the caller holds the
 * migration lock, since two sessions replacing one function at once make one of them fail.
 */
export async function applyEngineFunctions(db: QueryExecutorProvider): Promise<void> {
  for (const text of engineFunctions()) await sql.raw(text).execute(db);
}
