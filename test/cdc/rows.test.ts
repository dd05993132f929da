import { randomBytes } from 'node:crypto';
import { afterAll, describe, expect, it } from 'vitest';
import { type Column, insertRows } from '../../cdc/rows.ts';
import { canonicalEncoding } from '../../transforms/row-hash.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import { TEST_DATABASE_URL } from '../support.ts';
import { recordingWarehouse } from '../warehouse/recording.ts';

const columns: Column[] = [
  { name: 'note', kind: 'text' },
  { name: 'at', kind: 'timestamp' },
  { name: 'flag', kind: 'boolean' },
  { name: 'n', kind: 'integer' },
];
const rows: (string | null)[][] = [
  ["tab\there, it's", '2026-03-01T09:30:00.500000Z', 't', '42'],
  [null, null, 'f', null],
];
const lines = rows.map(canonicalEncoding);

const schema = `cdc_rows_${randomBytes(3).toString('hex')}`;
const pg = openPostgresWarehouse(TEST_DATABASE_URL, schema);
afterAll(async () => {
  await pg.session((s) => s.query(`drop schema if exists ${schema} cascade`));
  await pg.close();
});

describe('rows into a warehouse table', () => {
  it('streams them with COPY into PostgreSQL, values as they were', async () => {
    const got = await pg.session(async (s) => {
      await s.query(`create schema ${schema}`);
      await s.query(`create table ${pg.table('t')} (note text, at timestamptz, flag boolean, n integer)`);
      await insertRows(s, pg.table('t'), columns, lines);
      return s.query<Record<string, unknown>>(
        `select note, to_char(at at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at, flag, n from ${pg.table('t')} order by n nulls last`,
      );
    });
    expect(got).toEqual([
      { note: "tab\there, it's", at: '2026-03-01T09:30:00.500000Z', flag: true, n: 42 },
      { note: null, at: null, flag: false, n: null },
    ]);
  });

  it('writes INSERT statements with each value spelled by its kind where the warehouse has no COPY from memory (Snowflake)', async () => {
    const { wh, sqls } = recordingWarehouse();
    await wh.session((s) => insertRows(s, wh.table('T'), columns, lines));
    const insert = sqls().find((q) => q.startsWith('insert into'));
    expect(insert).toContain(`values ('tab\there, it''s', to_timestamp_tz('2026-03-01 09:30:00.500000000 +00:00'`);
    expect(insert).toContain(', true, 42), (null, null, false, null)');
  });
});
