import { randomUUID } from 'node:crypto';
import { TEST_DATABASE_URL } from '../support.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { openPostgresWarehouse } from '../../warehouse/postgres/dialect.ts';
import { openSnowflakeWarehouse, snowflakeOptionsFromEnv } from '../../warehouse/snowflake/dialect.ts';
import { type Logged, loggingWarehouse, recordingWarehouse, type Script } from './recording.ts';

/**
 * The warehouses the conformance suite runs every test on: PostgreSQL live on the test server,
 * Snowflake at the SQL it issues (a recorded connection), and Snowflake live when SNOWFLAKE_*
 * is set. Each `open` gives a warehouse of its own (its own schema), with what the history code
 * asks of it logged, removed by `close`.
 */
export interface Target {
  name: string;
  /** Holds data, so its rows can be read back. */
  live: boolean;
  /** Why the target does not run here, or null when it does. */
  skip: string | null;
  /** A warehouse of its own; a recorded one answers as `script` says. */
  open(script?: Script): Promise<{ wh: Warehouse; log: Logged[] }>;
  /**
   * Brings a warehouse to the state a test starts from: runs `fn` on a live target; on a
   * recorded one the script stands for that state, and nothing runs.
   */
  arrange(fn: () => Promise<unknown>): Promise<void>;
  close(): Promise<void>;
}

const suffix = () => randomUUID().replaceAll('-', '').slice(0, 10);

function postgresTarget(): Target {
  const opened: Warehouse[] = [];
  return {
    name: 'postgres',
    live: true,
    skip: null,
    async open() {
      const wh = openPostgresWarehouse(TEST_DATABASE_URL, `wh_conf_${suffix()}`);
      opened.push(wh);
      return loggingWarehouse(wh);
    },
    arrange: async (fn) => void (await fn()),
    async close() {
      for (const wh of opened) {
        await wh.session((s) => s.query(`drop schema if exists ${wh.dialect.id(wh.schema)} cascade`));
        await wh.close();
      }
    },
  };
}

function recordedSnowflakeTarget(): Target {
  return {
    name: 'snowflake (recorded)',
    live: false,
    skip: null,
    open: async (script) => loggingWarehouse(recordingWarehouse(script).wh),
    arrange: async () => undefined,
    close: async () => undefined,
  };
}

function liveSnowflakeTarget(env: Record<string, string | undefined>): Target {
  const options = snowflakeOptionsFromEnv(env);
  if (!options) {
    const skip = 'SNOWFLAKE_ACCOUNT is not set';
    const no = () => Promise.reject(new Error(skip));
    return { name: 'snowflake', live: true, skip, open: no, arrange: no, close: async () => undefined };
  }
  // Schemas of its own, dropped afterwards: the account's SNOWFLAKE_SCHEMA is left untouched.
  const admin = openSnowflakeWarehouse(options);
  const opened: { wh: Warehouse; schema: string }[] = [];
  const d = admin.dialect;
  return {
    name: 'snowflake',
    live: true,
    skip: null,
    async open() {
      const schema = `HUBFLOW_T_${suffix().toUpperCase()}`;
      await admin.session((s) => s.query(`create schema if not exists ${d.id(options.database)}.${d.id(schema)}`));
      const wh = openSnowflakeWarehouse({ ...options, schema });
      opened.push({ wh, schema });
      return loggingWarehouse(wh);
    },
    arrange: async (fn) => void (await fn()),
    async close() {
      for (const { wh, schema } of opened) {
        await admin.session((s) => s.query(`drop schema if exists ${d.id(options.database)}.${d.id(schema)}`));
        await wh.close();
      }
      await admin.close();
    },
  };
}

export function targets(): Target[] {
  return [postgresTarget(), recordedSnowflakeTarget(), liveSnowflakeTarget(process.env)];
}
