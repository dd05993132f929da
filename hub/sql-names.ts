import { createRequire } from 'node:module';
import type { escapeLiteral } from 'pg';
import { columnOf, type Entity } from './entities.ts';

/**
 * How the hub's tables and columns are named in SQL: the extracts, the demo hub's DDL and the
 * reconciliation all quote through here, so a configured name PostgreSQL reserves is quoted
 * everywhere or nowhere.
 */

// Names the configuration may use that PostgreSQL reserves; they are quoted.
const RESERVED = new Set(
  'all analyse analyze and any array as asc asymmetric both case cast check collate column constraint create current_catalog current_date current_role current_time current_timestamp current_user default deferrable desc distinct do else end except false fetch for foreign from grant group having in initially intersect into lateral leading limit localtime localtimestamp not null offset on only or order placing primary references returning select session_user some symmetric table then to trailing true union unique user using variadic when where window with'.split(
    ' ',
  ),
);

export const ident = (name: string) => (RESERVED.has(name) ? `"${name}"` : name);

export function tableName(schema: string, entity: Entity): string {
  return `${ident(schema)}.${ident(entity.table)}`;
}

export function sequenceName(schema: string, entity: Entity): string {
  return `${ident(schema)}.${ident(`${entity.table}_id_seq`)}`;
}

/** Primary-key columns, tenant first. */
export function keyColumns(entity: Entity): string[] {
  return [...(entity.tenantColumn ? [entity.tenantColumn] : []), ...entity.key.map((f) => columnOf(entity, f))];
}

// The driver's escaping from the small module that holds it: the whole driver loads only when
// a task connects, not when `hubflow dags list` loads the DAGs that import this file.
const driverEscape = (createRequire(import.meta.url)('pg/lib/utils.js') as { escapeLiteral: typeof escapeLiteral }).escapeLiteral;

/**
 * A SQL string literal, escaped by the driver (pg's escapeLiteral): quotes and backslashes are
 * doubled and a value holding a backslash is written E'...', so it stays one value whatever
 * standard_conforming_strings says. Only for statements that take no bound parameters (COPY,
 * DDL, the history SQL written once for every dialect).
 */
export const literal = (value: string): string => driverEscape(value).trimStart();
