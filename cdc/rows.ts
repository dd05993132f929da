import type { WarehouseSession } from '../warehouse/contract.ts';

/**
 * Rows into a table of a warehouse session: streamed with COPY where the session can
 * (`copyRows`), else as multi-row INSERT statements with each value spelled by the dialect as
 * its column's kind. Values are PostgreSQL's text form: ISO-8601 UTC timestamps, 't'/'f',
 * decimal integers; null is NULL.
 */

export type ColumnKind = 'text' | 'timestamp' | 'boolean' | 'integer';

export interface Column {
  name: string;
  kind: ColumnKind;
}

const ROWS_PER_INSERT = 500;

export async function insertRows(s: WarehouseSession, table: string, columns: readonly Column[], rows: readonly (readonly (string | null)[])[]): Promise<void> {
  if (!rows.length) return;
  if (s.copyRows) {
    const copied = await s.copyRows(
      table,
      columns.map((c) => c.name),
      rows,
    );
    if (copied !== rows.length) throw new Error(`COPY into ${table} took ${copied} of ${rows.length} rows`);
    return;
  }
  const d = s.dialect;
  const literal = (kind: ColumnKind, v: string | null): string => {
    if (v === null) return 'null';
    if (kind === 'timestamp') return d.timestamp(v);
    if (kind === 'boolean') return v === 't' ? 'true' : 'false';
    if (kind === 'integer' && /^-?\d+$/.test(v)) return v;
    return d.text(v);
  };
  const names = columns.map((c) => d.id(c.name)).join(', ');
  for (let i = 0; i < rows.length; i += ROWS_PER_INSERT) {
    const values = rows.slice(i, i + ROWS_PER_INSERT).map((row) => `(${row.map((v, j) => literal(columns[j]!.kind, v)).join(', ')})`);
    await s.query(`insert into ${table} (${names}) values ${values.join(', ')}`);
  }
}
