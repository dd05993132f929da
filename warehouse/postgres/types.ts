import type { ColumnType } from '../../hub/entities.ts';

/** History columns hold what the hub's columns hold, in PostgreSQL's own types. */
export const TYPES: Record<ColumnType, string> = {
  text: 'text',
  integer: 'integer',
  // Money: exact, two decimals, up to a trillion.
  numeric: 'numeric(14,2)',
  date: 'date',
  timestamptz: 'timestamptz',
  boolean: 'boolean',
};

export const TIMESTAMP_TYPE = 'timestamptz';
export const BIGINT_TYPE = 'bigint';
