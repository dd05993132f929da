import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { openPostgres } from '../../core/pg.ts';
import { TEST_DATABASE_URL } from '../support.ts';

describe('a PostgreSQL connection that the server ends', () => {
  it('fails the transaction holding it, never the process, and the next statement gets a new connection', async () => {
    const name = `hubflow-test-${randomUUID().slice(0, 8)}`;
    const db = openPostgres(TEST_DATABASE_URL, { applicationName: name, poolSize: 2 });
    const admin = openPostgres(TEST_DATABASE_URL, { poolSize: 1 });
    try {
      const held = db.transaction().execute(async (trx) => {
        await sql`select 1`.execute(trx);
        // Between two statements, as a restart or failover would: the checked-out client hears
        // of it through an error event; unheard, that event would end the process.
        await sql`select pg_terminate_backend(pid) from pg_stat_activity where application_name = ${name}`.execute(admin);
        await new Promise((resolve) => setTimeout(resolve, 300));
        await sql`select 2`.execute(trx);
      });
      await expect(held).rejects.toThrow(/terminat|not queryable|Connection/i);
      const { rows } = await sql<{ n: number }>`select 3 as n`.execute(db);
      expect(rows[0]!.n).toBe(3);
    } finally {
      await db.destroy();
      await admin.destroy();
    }
  });
});
