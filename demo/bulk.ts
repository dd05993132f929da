import { sql, type Kysely, type RawBuilder } from 'kysely';
import { rowLayout } from './copy.ts';
import type { Entity } from '../hub/entities.ts';
import { TENANT, UPDATED_AT, type Row } from './generate.ts';
import { ident } from '../hub/sql-names.ts';

/**
 * Set-based writes with the values as arrays: one statement per batch however many rows,
 * and the statement text does not grow with them.
 */

export interface ArrayColumn {
  column: string;
  /** PostgreSQL element type of the array, e.g. 'text', 'timestamptz'. */
  type: string;
  values: unknown[];
}

function unnest(columns: ArrayColumn[]): RawBuilder<unknown> {
  const arrays = sql.join(columns.map((c) => sql`${c.values}::${sql.raw(c.type)}[]`));
  return sql`unnest(${arrays}) as u(${sql.raw(columns.map((_, i) => `c${i}`).join(', '))})`;
}

/** `update table t set col = u.col ... from unnest(...) u where t.match = u.match ...`; returns rows updated. */
export async function updateFromArrays<DB>(
  db: Kysely<DB>,
  table: string,
  match: ArrayColumn[],
  set: (ArrayColumn & { expression?: (t: string, u: string) => string })[],
): Promise<number> {
  const all = [...match, ...set];
  const u = (i: number) => `u.c${i}`;
  const assignments = set.map((c, j) => `${ident(c.column)} = ${c.expression ? c.expression('t', u(match.length + j)) : u(match.length + j)}`);
  const where = match.map((c, i) => `t.${ident(c.column)} = ${u(i)}`).join(' and ');
  const result = await sql`update ${sql.raw(table)} as t set ${sql.raw(assignments.join(', '))} from ${unnest(all)} where ${sql.raw(where)}`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

export async function deleteFromArrays<DB>(db: Kysely<DB>, table: string, match: ArrayColumn[]): Promise<number> {
  const where = match.map((c, i) => `t.${ident(c.column)} = u.c${i}`).join(' and ');
  const result = await sql`delete from ${sql.raw(table)} as t using ${unnest(match)} where ${sql.raw(where)}`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Inserts rows given as column arrays of equal length. */
export async function insertFromArrays<DB>(db: Kysely<DB>, table: string, columns: ArrayColumn[]): Promise<number> {
  if (!columns[0]?.values.length) return 0;
  const list = columns.map((c) => ident(c.column)).join(', ');
  const result = await sql`insert into ${sql.raw(table)} (${sql.raw(list)}) select * from ${unnest(columns)}`.execute(db);
  return Number(result.numAffectedRows ?? 0);
}

/** Generated rows as insertFromArrays columns, in the entity's layout. */
export function rowsToArrays(entity: Entity, rows: Row[]): ArrayColumn[] {
  const { fields, columns } = rowLayout(entity);
  return fields.map((f, i) => ({
    column: columns[i]!,
    type: f === TENANT ? 'text' : f === UPDATED_AT ? 'timestamptz' : entity.columns[f]!.type,
    values: rows.map((r) => r[f] ?? null),
  }));
}
