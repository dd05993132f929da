import type { Adapter } from '../contract.ts';
import { postgresAccess } from './access.ts';
import { postgresDialect as d } from './sql.ts';

export const postgresAdapter: Adapter = {
  // COPY reads the file where it is, in whatever compression the staging area uses.
  stagedCompression: (configured) => configured,
  // A transaction-scoped advisory lock: nothing to prepare, released by COMMIT or ROLLBACK.
  scopeLock: ({ key }) => ({ prepare: [], acquire: `select pg_advisory_xact_lock(hashtext(${d.text(`hubflow-history:${key}`)}))` }),
  // The simple query protocol runs statements joined by ';' in one round trip.
  batchesStatements: true,
  rewritesOldRows: true,
  access: postgresAccess,
};
