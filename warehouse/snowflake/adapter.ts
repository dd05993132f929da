import type { Adapter } from '../contract.ts';
import { snowflakeAccess } from './access.ts';
import { snowflakeDialect as d } from './sql.ts';

export const snowflakeAdapter: Adapter = {
  // PUT is told the file is gzip'd and COPY reads it as GZIP: the staged file must be gzip.
  stagedCompression: () => 'gzip',
  // Snowflake has no advisory locks: the scope's row in the lock table, updated first in the
  // transaction, holds the second load of a scope until the first commits. The row is made
  // once, outside the transaction (a duplicate from a race is harmless).
  scopeLock: ({ table, key, runId }) => ({
    prepare: [`insert into ${table} (tenant_id) select ${d.text(key)} where not exists (select 1 from ${table} where tenant_id = ${d.text(key)})`],
    acquire: `update ${table} set locked_at = current_timestamp, locked_by_run_id = ${runId} where tenant_id = ${d.text(key)}`,
  }),
  rewritesOldRows: false,
  access: snowflakeAccess,
};
