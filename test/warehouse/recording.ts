import path from 'node:path';
import { STATEMENT_BATCH_SEPARATOR, type Warehouse, type WarehouseSession } from '../../warehouse/contract.ts';
import { openSnowflakeWarehouse, type SnowflakeOptions } from '../../warehouse/snowflake/dialect.ts';
import type { SnowflakeConnectionLike } from '../../warehouse/snowflake/driver.ts';

/**
 * Snowflake at the SQL it issues: a connection that records every statement and answers as
 * Snowflake would, with the answers a test varies scripted.
 */

export type Row = Record<string, unknown>;

export const BASE: SnowflakeOptions = { account: 'acct', username: 'loader', password: 'x', database: 'analytics', schema: 'history' };

/** What Snowflake would answer, with the parts a test varies scripted. */
export interface Script {
  /** COPY INTO's per-file report; default: the one file, LOADED, every staged row. */
  copy?: (sql: string) => Row[];
  put?: Row[];
  ledger?: Row[];
  counts?: Row[];
  totals?: Row[];
  approved?: boolean;
  /** Rows COPY reports loaded, default 3 (the clients snapshot). */
  staged?: number;
  /** The tables the tenant policy is already bound to (POLICY_REFERENCES' ref_entity_name). */
  bound?: string[];
}

export interface Logged {
  conn: number;
  sql: string;
}

export function snowflakeAnswer(script: Script): (sql: string) => Row[] {
  return (sql) => {
    if (sql.startsWith('PUT ')) {
      const name = path.basename(/^PUT 'file:\/\/([^']+)'/.exec(sql)![1]!);
      return (
        script.put ?? [
          {
            source: name,
            target: name,
            sourceSize: 120,
            targetSize: 120,
            sourceCompression: 'GZIP',
            targetCompression: 'GZIP',
            status: 'UPLOADED',
            message: '',
          },
        ]
      );
    }
    if (sql.startsWith('COPY INTO ')) {
      if (script.copy) return script.copy(sql);
      const [, folder, name] = /FROM @~\/(\S+) FILES = \('([^']+)'\)/.exec(sql)!;
      const n = BigInt(script.staged ?? 3);
      // Upper-case keys and bigint counts, as the driver hands them over.
      return [{ FILE: `${folder}${name}`, STATUS: 'LOADED', ROWS_PARSED: n, ROWS_LOADED: n, ERROR_LIMIT: 1n, ERRORS_SEEN: 0n, FIRST_ERROR: null }];
    }
    if (/ from "ANALYTICS"\."HISTORY"\."LOAD_BATCHES" where tenant_id = /.test(sql)) return script.ledger ?? [];
    if (sql.startsWith('select change_type, count(*) as n from ')) return script.counts ?? [{ CHANGE_TYPE: 'insert', N: 3n }];
    if (sql.startsWith('select count(*) as n, cast(coalesce(sum(')) return script.totals ?? [{ N: 3n, S: '1234' }];
    if (sql.startsWith('select count(*) as n from (select ')) return [{ N: 0n }];
    if (sql.startsWith('select count(*) as n, min(tenant_id) as t ')) return [{ N: 0n, T: null }];
    if (sql.startsWith('select 1 as ok ')) return script.approved ? [{ OK: 1n }] : [];
    if (sql.startsWith('select ref_entity_name as name from table(')) return (script.bound ?? []).map((name) => ({ NAME: name }));
    if (/^(create|alter) /i.test(sql)) return [{ status: 'Statement executed successfully.' }];
    return [];
  };
}

/** A connection that records every statement and answers like Snowflake would. */
export class RecordingConnection implements SnowflakeConnectionLike {
  connected = false;
  destroyed = false;
  constructor(
    readonly id: number,
    private readonly log: Logged[],
    private readonly answer: (sql: string) => Row[],
  ) {}

  async connectAsync(): Promise<unknown> {
    this.connected = true;
    return this;
  }

  execute(options: Parameters<SnowflakeConnectionLike['execute']>[0]): unknown {
    if (!this.connected || this.destroyed) throw new Error('statement on a connection that is not open');
    this.log.push({ conn: this.id, sql: options.sqlText });
    const rows = this.answer(options.sqlText);
    setImmediate(() => options.complete(undefined, {}, rows));
    return {};
  }

  destroy(callback: (err: Error | undefined) => void): void {
    this.destroyed = true;
    callback(undefined);
  }
}

export function recordingWarehouse(script: Script = {}) {
  const log: Logged[] = [];
  const connections: RecordingConnection[] = [];
  const wh = openSnowflakeWarehouse({
    ...BASE,
    connect: () => {
      const c = new RecordingConnection(connections.length + 1, log, snowflakeAnswer(script));
      connections.push(c);
      return c;
    },
  });
  const sqls = () => log.map((l) => l.sql);
  const find = (test: (sql: string) => boolean) => log.findIndex((l) => test(l.sql));
  return { wh, log, connections, sqls, find };
}

/**
 * Any warehouse, with what the history code asks of it logged: each statement, and each bulk
 * load as `load <table>`, tagged with its session. The same log for every dialect, so one
 * assertion on order and transactions holds them all to it.
 */
export function loggingWarehouse(inner: Warehouse): { wh: Warehouse; log: Logged[] } {
  const log: Logged[] = [];
  let sessions = 0;
  const wh: Warehouse = {
    dialect: inner.dialect,
    adapter: inner.adapter,
    schema: inner.schema,
    table: (name) => inner.table(name),
    session: (fn) =>
      inner.session((s) => {
        const conn = ++sessions;
        const logged: WarehouseSession = {
          dialect: s.dialect,
          query: (sql) => {
            // Statements sent together (see Adapter.batchesStatements) are logged one by one, in order.
            for (const one of sql.split(STATEMENT_BATCH_SEPARATOR)) log.push({ conn, sql: one });
            return s.query(sql);
          },
          load: (table, columns, file, attempt) => {
            log.push({ conn, sql: `load ${table}` });
            return s.load(table, columns, file, attempt);
          },
        };
        return fn(logged);
      }),
    close: () => inner.close(),
  };
  return { wh, log };
}
