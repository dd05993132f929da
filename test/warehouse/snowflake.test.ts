import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Warehouse } from '../../warehouse/contract.ts';
import { openSnowflakeWarehouse, snowflakeOptionsFromEnv, type SnowflakeOptions } from '../../warehouse/snowflake/dialect.ts';
import { snowflakeDialect } from '../../warehouse/snowflake/sql.ts';
import { applyScope, ensureSchema, utcDayInterval } from '../../tasks/history/apply.ts';
import { BASE, type Logged, RecordingConnection, recordingWarehouse, type Script, snowflakeAnswer } from './recording.ts';
import { CLIENT_ROWS, clients, countries, SNAPSHOT, stage, type Values } from './staging.ts';

/** Snowflake's own spelling, settings and driver: PUT and COPY reports, sessions, options; live when SNOWFLAKE_* is set. */

describe('snowflakeDialect', () => {
  const d = snowflakeDialect;

  it('quotes identifiers in upper case, so quoted and unquoted names in the shared SQL meet', () => {
    expect(d.id('tenant_id')).toBe('"TENANT_ID"');
    expect(d.id('a"b')).toBe('"A""B"');
  });

  it('escapes quotes and backslashes in string literals', () => {
    expect(d.text("it's")).toBe("'it''s'");
    expect(d.text('C:\\temp\\new')).toBe("'C:\\\\temp\\\\new'");
    expect(d.text("\\'")).toBe("'\\\\'''");
  });

  it('writes timestamps with an explicit format and the UTC offset', () => {
    expect(d.timestamp('2025-12-28T10:00:00.123456Z')).toBe("to_timestamp_tz('2025-12-28 10:00:00.123456000 +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')");
    expect(d.timestamp('2025-12-28T10:00:00Z')).toBe("to_timestamp_tz('2025-12-28 10:00:00.000000000 +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM')");
    expect(() => d.timestamp("2025-12-28'; drop table x; --")).toThrow(/not an ISO-8601 UTC instant/);
  });

  it('maps the column types and the SQL pieces', () => {
    expect(['text', 'integer', 'numeric', 'date', 'timestamptz', 'boolean'].map((t) => d.type(t as never))).toEqual([
      'VARCHAR',
      'NUMBER(10,0)',
      'NUMBER(14,2)',
      'DATE',
      'TIMESTAMP_TZ(6)',
      'BOOLEAN',
    ]);
    expect(d.timestampType).toBe('TIMESTAMP_TZ(6)');
    expect(d.bigintType).toBe('NUMBER(19,0)');
    expect(d.int60('v.row_hash')).toBe("TO_NUMBER(UPPER(SUBSTR(v.row_hash, 1, 15)), 'XXXXXXXXXXXXXXX')");
    expect(d.createTemp('"STG"', '"A" VARCHAR')).toBe('create temporary table "STG" ("A" VARCHAR)');
    expect(d.addColumn('"T"', '"C"', 'DATE')).toBe('alter table "T" add column if not exists "C" DATE');
  });

  it('qualifies tables with database and schema', () => {
    const wh = openSnowflakeWarehouse(BASE);
    expect(wh.table('clients_history')).toBe('"ANALYTICS"."HISTORY"."CLIENTS_HISTORY"');
    expect(wh.schema).toBe('ANALYTICS.HISTORY');
  });
});

describe('snowflakeOptionsFromEnv', () => {
  const env = { SNOWFLAKE_ACCOUNT: 'org-acct', SNOWFLAKE_USER: 'loader', SNOWFLAKE_DATABASE: 'analytics', SNOWFLAKE_SCHEMA: 'history' };

  it('is null when SNOWFLAKE_ACCOUNT is unset or blank', () => {
    expect(snowflakeOptionsFromEnv({})).toBeNull();
    expect(snowflakeOptionsFromEnv({ SNOWFLAKE_ACCOUNT: ' ', SNOWFLAKE_USER: 'x' })).toBeNull();
  });

  it('reads every setting', () => {
    expect(
      snowflakeOptionsFromEnv({
        ...env,
        SNOWFLAKE_PASSWORD: 'pw',
        SNOWFLAKE_WAREHOUSE: 'load_wh',
        SNOWFLAKE_ROLE: 'loader_role',
        SNOWFLAKE_PRIVATE_KEY_PATH: '/keys/k.p8',
      }),
    ).toEqual({
      account: 'org-acct',
      username: 'loader',
      database: 'analytics',
      schema: 'history',
      password: 'pw',
      privateKeyPath: '/keys/k.p8',
      warehouse: 'load_wh',
      role: 'loader_role',
    });
  });

  it('reads the connect timeout, and refuses one that is not a whole number of milliseconds', () => {
    expect(snowflakeOptionsFromEnv({ ...env, SNOWFLAKE_PASSWORD: 'pw', SNOWFLAKE_CONNECT_TIMEOUT_MS: '5000' })?.connectTimeoutMs).toBe(5000);
    expect(() => snowflakeOptionsFromEnv({ ...env, SNOWFLAKE_PASSWORD: 'pw', SNOWFLAKE_CONNECT_TIMEOUT_MS: '5s' })).toThrow(
      "SNOWFLAKE_CONNECT_TIMEOUT_MS: expected a whole number of milliseconds, got '5s'",
    );
  });

  it('names what is missing', () => {
    expect(() => snowflakeOptionsFromEnv({ SNOWFLAKE_ACCOUNT: 'a' })).toThrow('SNOWFLAKE_ACCOUNT is set but SNOWFLAKE_USER is not');
    expect(() => snowflakeOptionsFromEnv(env)).toThrow(/neither SNOWFLAKE_PASSWORD nor SNOWFLAKE_PRIVATE_KEY_PATH/);
  });
});

describe('session.load', () => {
  async function loadWith(script: Script) {
    const rec = recordingWarehouse(script);
    const extract = await stage(clients, 'acme', SNAPSHOT, CLIENT_ROWS);
    const file = extract.entities[0]!.file!;
    const loading = rec.wh.session((s) => s.load('"STG"', ['tenant_id', 'client_id'], file, 'a1/clients'));
    return { ...rec, loading };
  }

  it('returns the rows Snowflake reports loaded, summed over the files', async () => {
    const { loading } = await loadWith({
      copy: () => [
        { FILE: 'hubflow/a1/clients/clients.tsv.gz', STATUS: 'LOADED', ROWS_PARSED: 2n, ROWS_LOADED: 2n },
        { FILE: 'hubflow/a1/clients/clients_2.tsv.gz', STATUS: 'LOADED', ROWS_PARSED: '5', ROWS_LOADED: '5' },
      ],
    });
    await expect(loading).resolves.toBe(7);
  });

  it('raises on a file that did not load completely, and removes the upload', async () => {
    const { loading, sqls } = await loadWith({
      copy: () => [
        {
          FILE: 'hubflow/a1/clients/clients.tsv.gz',
          STATUS: 'PARTIALLY_LOADED',
          ROWS_PARSED: 3n,
          ROWS_LOADED: 2n,
          FIRST_ERROR: "Numeric value 'x' is not recognized",
          FIRST_ERROR_LINE: 2n,
          FIRST_ERROR_COLUMN_NAME: '"STG"["CLIENT_ID":2]',
        },
      ],
    });
    await expect(loading).rejects.toMatchObject({
      name: 'PermanentError',
      message: expect.stringMatching(/as PARTIALLY_LOADED, 2 of 3 rows loaded: Numeric value 'x' is not recognized \(line 2/),
    });
    expect(sqls().at(-1)).toBe('REMOVE @~/hubflow/a1/clients/');
  });

  it('raises when PUT did not upload, before any COPY', async () => {
    const { loading, sqls } = await loadWith({ put: [{ source: 'clients.tsv.gz', status: 'SKIPPED', message: 'exists' }] });
    await expect(loading).rejects.toThrow(/PUT of .*clients\.tsv\.gz to @~\/hubflow\/a1\/clients\/: SKIPPED exists/);
    expect(sqls().some((s) => s.startsWith('COPY'))).toBe(false);
  });

  it('uses a named stage when configured', async () => {
    const log: Logged[] = [];
    const wh = openSnowflakeWarehouse({
      ...BASE,
      stage: 'loads.hubflow_stage',
      connect: () =>
        new RecordingConnection(1, log, snowflakeAnswer({ copy: () => [{ FILE: 'clients.tsv.gz', STATUS: 'LOADED', ROWS_PARSED: 3n, ROWS_LOADED: 3n }] })),
    });
    const extract = await stage(clients, 'acme', SNAPSHOT, CLIENT_ROWS);
    await expect(wh.session((s) => s.load('"STG"', ['tenant_id'], extract.entities[0]!.file!, 'a2/clients'))).resolves.toBe(3);
    expect(log.find((l) => l.sql.startsWith('PUT'))!.sql).toContain(' @loads.hubflow_stage/hubflow/a2/clients/ ');
    expect(() => openSnowflakeWarehouse({ ...BASE, stage: 'x; drop table y' })).toThrow(/not a plain/);
  });
});

describe('session lifecycle', () => {
  it('rolls back an open transaction and destroys the connection when the work fails', async () => {
    const { wh, sqls, connections } = recordingWarehouse();
    await expect(
      wh.session(async (s) => {
        await s.query('begin');
        await s.query('insert into x values (1)');
        throw new Error('boom');
      }),
    ).rejects.toThrow('boom');
    expect(sqls().slice(-3)).toEqual(['begin', 'insert into x values (1)', 'rollback']);
    expect(connections[0]!.destroyed).toBe(true);
  });

  it('fails a login that never answers after the connect timeout, naming the account, and drops the connection', async () => {
    let conn: RecordingConnection | undefined;
    const wh = openSnowflakeWarehouse({
      ...BASE,
      account: 'org-unreachable',
      connectTimeoutMs: 50,
      connect: () => {
        conn = new RecordingConnection(1, [], () => []);
        conn.connectAsync = () => new Promise(() => undefined);
        return conn;
      },
    });
    const started = Date.now();
    await expect(wh.session(async () => 'never')).rejects.toThrow(
      /^Snowflake account 'org-unreachable' did not accept a connection within 0\.05 s \(SNOWFLAKE_CONNECT_TIMEOUT_MS\)/,
    );
    expect(Date.now() - started).toBeLessThan(5_000);
    expect(conn!.destroyed).toBe(true);
  });

  it('names the account when the login fails', async () => {
    const wh = openSnowflakeWarehouse({
      ...BASE,
      connect: () =>
        Object.assign(new RecordingConnection(1, [], () => []), { connectAsync: () => Promise.reject(new Error('Incorrect username or password')) }),
    });
    await expect(wh.session(async () => 'never')).rejects.toThrow("Snowflake account 'acct': Incorrect username or password");
  });

  it('normalises result keys to lower case', async () => {
    const { wh } = recordingWarehouse({ totals: [{ N: 5n, S: '77' }] });
    const rows = await wh.session((s) => s.query('select count(*) as n, cast(coalesce(sum(1), 0) as text) as s from t'));
    expect(rows).toEqual([{ n: 5n, s: '77' }]);
  });
});

describe.skipIf(!process.env.SNOWFLAKE_ACCOUNT)('applyScope on a real Snowflake account', () => {
  const d = snowflakeDialect;
  // A schema of its own, dropped afterwards: the account's SNOWFLAKE_SCHEMA is left untouched.
  const schema = `HUBFLOW_T_${randomUUID().replaceAll('-', '').slice(0, 10).toUpperCase()}`;
  let options: SnowflakeOptions;
  let admin: Warehouse;
  let wh: Warehouse;

  beforeAll(async () => {
    options = snowflakeOptionsFromEnv(process.env)!;
    admin = openSnowflakeWarehouse(options);
    await admin.session((s) => s.query(`create schema if not exists ${d.id(options.database)}.${d.id(schema)}`));
    wh = openSnowflakeWarehouse({ ...options, schema });
    await ensureSchema(wh, { countries });
  }, 180_000);

  afterAll(async () => {
    await admin?.session((s) => s.query(`drop schema if exists ${d.id(options.database)}.${d.id(schema)}`));
    await wh?.close();
    await admin?.close();
  }, 120_000);

  const rows = (name3: string): Values[] => [
    ['ZX', 'Tab\there "q" \'s\\back\nline\rend', 'EUR', null, '2025-12-28 10:00:00+00'],
    ['ZY', '', 'USD', 'ssn', '2025-12-28 10:00:00.123456+00'],
    ['ZZ', name3, 'GBP', 'nino', '2025-12-27 09:00:00.5+00'],
  ];

  it('loads, versions and reads back a small global entity', async () => {
    const run = randomUUID().slice(0, 8);
    const first = await stage(countries, null, '2025-12-28T11:00:00.000000Z', rows('Plain'));
    const [loaded] = await applyScope({
      warehouse: wh,
      entities: { countries },
      extract: first,
      runId: 1,
      interval: utcDayInterval('2025-12-28'),
      attempt: `${run}-1`,
    });
    expect(loaded).toMatchObject({ status: 'loaded', inserted: 3, currentCount: 3, currentSum: first.entities[0]!.sum });

    const current = await wh.session((s) =>
      s.query<{ code: string; name: string; currency_code: string; national_id_type: string | null; at: string }>(
        `select "CODE" as code, "NAME" as name, "CURRENCY_CODE" as currency_code, "NATIONAL_ID_TYPE" as national_id_type, to_varchar(source_updated_at, 'YYYY-MM-DD HH24:MI:SS.FF6 TZH:TZM') as at
         from ${wh.table('countries_current')} order by 1`,
      ),
    );
    expect(current).toEqual([
      { code: 'ZX', name: 'Tab\there "q" \'s\\back\nline\rend', currency_code: 'EUR', national_id_type: null, at: '2025-12-28 10:00:00.000000 +00:00' },
      { code: 'ZY', name: '', currency_code: 'USD', national_id_type: 'ssn', at: '2025-12-28 10:00:00.123456 +00:00' },
      { code: 'ZZ', name: 'Plain', currency_code: 'GBP', national_id_type: 'nino', at: '2025-12-27 09:00:00.500000 +00:00' },
    ]);

    const again = await applyScope({
      warehouse: wh,
      entities: { countries },
      extract: first,
      runId: 1,
      interval: utcDayInterval('2025-12-28'),
      attempt: `${run}-2`,
    });
    expect(again[0]).toMatchObject({ status: 'already_loaded', currentCount: 3 });

    const second = await stage(countries, null, '2025-12-29T11:00:00.000000Z', rows('Renamed'));
    const [next] = await applyScope({
      warehouse: wh,
      entities: { countries },
      extract: second,
      runId: 2,
      interval: utcDayInterval('2025-12-29'),
      attempt: `${run}-3`,
    });
    expect(next).toMatchObject({ status: 'loaded', inserted: 0, updated: 1, deleted: 0, currentCount: 3, currentSum: second.entities[0]!.sum });
    const [versions] = await wh.session((s) => s.query<{ n: unknown }>(`select count(*) as n from ${wh.table('countries_history')} where "CODE" = 'ZZ'`));
    expect(Number(versions!.n)).toBe(2);
  }, 300_000);
});
