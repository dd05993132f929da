import { decodeCanonical } from '../transforms/row-hash.ts';
import type { WarehouseSession } from '../warehouse/contract.ts';

/**
 * Rows into a table of a warehouse session. A batch keeps its rows as lines of PostgreSQL's COPY
 * text format (`canonicalEncoding`: compact while the batch waits for its turn), streamed as
 * they are where the session can (`copyText`), else written as multi-row INSERT statements with
 * each value spelled by the dialect as its column's kind. Values are PostgreSQL's text form:
 * ISO-8601 UTC timestamps, 't'/'f', decimal integers; \N is NULL.
 */

export type ColumnKind = 'text' | 'timestamp' | 'boolean' | 'integer';

export interface Column {
  name: string;
  kind: ColumnKind;
}

const ROWS_PER_INSERT = 500;

export async function insertRows(s: WarehouseSession, table: string, columns: readonly Column[], lines: readonly string[]): Promise<void> {
  if (!lines.length) return;
  if (s.copyText) {
    const copied = await s.copyText(
      table,
      columns.map((c) => c.name),
      lines,
    );
    if (copied !== lines.length) throw new Error(`COPY into ${table} took ${copied} of ${lines.length} rows`);
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
  for (let i = 0; i < lines.length; i += ROWS_PER_INSERT) {
    const values = lines.slice(i, i + ROWS_PER_INSERT).map((line) => {
      const row = decodeCanonical(line);
      if (row.length !== columns.length) throw new Error(`a row for ${table} has ${row.length} values, not ${columns.length}`);
      return `(${row.map((v, j) => literal(columns[j]!.kind, v)).join(', ')})`;
    });
    await s.query(`insert into ${table} (${names}) values ${values.join(', ')}`);
  }
}
