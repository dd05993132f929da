import { literal } from '../../hub/sql-names.ts';
import type { Dialect } from '../contract.ts';
import { BIGINT_TYPE, TIMESTAMP_TYPE, TYPES } from './types.ts';

const id = (name: string) => `"${name.replaceAll('"', '""')}"`;

/** A DO block: PL/pgSQL, for the DDL PostgreSQL has no IF NOT EXISTS for. */
export const block = (body: string) => `do $hubflow$ begin\n${body}\nend $hubflow$`;

/** The oldest server whose views can check the reader's rights rather than their owner's. */
export const INVOKER_VIEWS = 150000;

/**
 * A view whose reads are checked against the reader's rights, so row security applies to
 * them (PostgreSQL 15+; below, a plain view, and tenant access refuses to grant). The option
 * is written every time: `create or replace view` resets a view's options to those it names.
 */
function invokerView(view: string, select: string): string {
  const create = (options: string) => literal(`create or replace view ${view}${options} as ${select}`);
  return block(
    `  execute case when current_setting('server_version_num')::int >= ${INVOKER_VIEWS} then ${create(' with (security_invoker = on)')} else ${create('')} end;`,
  );
}

export const postgresDialect: Dialect = {
  id,
  // The driver's escaping: a backslash cannot end the literal, whatever the session's settings.
  text: literal,
  timestamp: (iso) => `'${iso}'::timestamptz`,
  isoText: (column) => `to_char(${column} at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')`,
  type: (t) => TYPES[t],
  timestampType: TIMESTAMP_TYPE,
  bigintType: BIGINT_TYPE,
  int60: (h) => `('x' || substr(${h}, 1, 15))::bit(60)::bigint`,
  createSchema: (schema) => [`create schema if not exists ${id(schema)}`],
  // Temporary tables are private to the session and skip the WAL: staging costs no durability.
  createTemp: (table, columns) => `create temporary table ${table} (${columns}) on commit preserve rows`,
  addColumn: (table, column, type) => `alter table ${table} add column if not exists ${column} ${type}`,
  // PostgreSQL keeps a view's grants across `create or replace`.
  replaceView: invokerView,
  createIndex: (table, index, columns, o = {}) => [
    `create ${o.unique ? 'unique ' : ''}index if not exists ${id(index)} on ${table} (${columns})${o.where ? ` where ${o.where}` : ''}`,
  ],
  dropKey: (table, key) => [`alter table ${table} drop constraint if exists ${id(key)}`],
  // Nested loops only, for these statements: the batch's keys probe the table's unique indexes.
  probeByKey: (statements) => [
    'set local enable_hashjoin = off',
    'set local enable_mergejoin = off',
    ...statements,
    'set local enable_hashjoin = on',
    'set local enable_mergejoin = on',
  ],
};
