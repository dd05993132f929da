import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { columnOf, type Entity } from '../hub/entities.ts';
import { TENANT, UPDATED_AT, type Row, type Value } from './generate.ts';
import { ident, tableName } from '../hub/sql-names.ts';

/** Rows to the hub with COPY FROM STDIN (text format), generated as the server takes them. */

/** Row fields in column order, with the hub's column names: tenant, the entity's fields, updated-at. */
export function rowLayout(entity: Entity): { fields: string[]; columns: string[] } {
  const fields = [...(entity.tenantColumn ? [TENANT] : []), ...Object.keys(entity.columns), UPDATED_AT];
  const columns = fields.map((f) => (f === TENANT ? entity.tenantColumn! : f === UPDATED_AT ? entity.updatedAtColumn : columnOf(entity, f)));
  return { fields, columns };
}

const SPECIAL = /[\\\t\n\r]/;
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' };

function field(value: Value | undefined, name: string, entity: Entity): string {
  if (value === null) return '\\N';
  if (typeof value === 'string') return SPECIAL.test(value) ? value.replace(/[\\\t\n\r]/g, (c) => ESCAPES[c]!) : value;
  if (typeof value === 'number') return String(value);
  if (typeof value === 'boolean') return value ? 't' : 'f';
  throw new Error(`the demo hub generator has no field '${name}' of entity '${entity.name}': seeding writes the demo layout only`);
}

// Large enough that per-write overhead vanishes, small enough that memory stays flat.
const CHUNK_CHARS = 256 * 1024;

function* lines(entity: Entity, rows: Iterable<Row>, counter: { rows: number }): Generator<string> {
  const { fields } = rowLayout(entity);
  // Joined rather than concatenated: join writes one flat string, where += builds ropes that
  // must be flattened again before the socket write.
  const values: string[] = new Array<string>(fields.length);
  let batch: string[] = [];
  let chars = 0;
  for (const row of rows) {
    for (let i = 0; i < fields.length; i++) values[i] = field(row[fields[i]!], fields[i]!, entity);
    const line = values.join('\t');
    batch.push(line);
    chars += line.length;
    counter.rows++;
    if (chars >= CHUNK_CHARS) {
      batch.push('');
      yield batch.join('\n');
      batch = [];
      chars = 0;
    }
  }
  if (batch.length) {
    batch.push('');
    yield batch.join('\n');
  }
}

/**
 * COPYs rows into the entity's table on `client` (inside the caller's transaction). `freeze`
 * writes the rows already frozen, allowed only when the table was created or truncated in
 * this transaction: later reads then need not set hint bits on millions of rows.
 */
export async function copyRows(client: pg.PoolClient, schema: string, entity: Entity, rows: Iterable<Row>, freeze = false): Promise<number> {
  const { columns } = rowLayout(entity);
  const counter = { rows: 0 };
  const statement = `copy ${tableName(schema, entity)} (${columns.map(ident).join(', ')}) from stdin with (format text${freeze ? ', freeze' : ''})`;
  await pipeline(Readable.from(lines(entity, rows, counter)), client.query(copyFrom(statement)));
  return counter.rows;
}
