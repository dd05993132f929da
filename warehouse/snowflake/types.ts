import type { ColumnType } from '../../hub/entities.ts';

/** Snowflake's types for the hub's: the same values, the same precision. */
export const TYPES: Record<ColumnType, string> = {
  text: 'VARCHAR',
  integer: 'NUMBER(10,0)',
  numeric: 'NUMBER(14,2)',
  date: 'DATE',
  timestamptz: 'TIMESTAMP_TZ(6)',
  boolean: 'BOOLEAN',
};

export const TIMESTAMP_TYPE = 'TIMESTAMP_TZ(6)';
export const BIGINT_TYPE = 'NUMBER(19,0)';
