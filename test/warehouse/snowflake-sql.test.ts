import path from 'node:path';
import { writeFile } from 'node:fs/promises';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import type { Warehouse } from '../../warehouse/contract.ts';
import { stagePath } from '../../warehouse/snowflake/driver.ts';
import { applyScope, utcDayInterval } from '../../tasks/history/apply.ts';
import { recordingWarehouse, type Script } from './recording.ts';
import { applyClients, CLIENT_ROWS, clients, SNAPSHOT, stage } from './staging.ts';

/** The exact SQL a load issues on Snowflake, in its order, and what a bad COPY report stops. */

// The file format written out independently of the implementation: a typo on either side fails.
const FORMAT = String.raw`FILE_FORMAT = (TYPE = CSV FIELD_DELIMITER = '\t' RECORD_DELIMITER = '\n' FIELD_OPTIONALLY_ENCLOSED_BY = NONE ESCAPE_UNENCLOSED_FIELD = '\\' NULL_IF = ('\\N') EMPTY_FIELD_AS_NULL = FALSE ERROR_ON_COLUMN_COUNT_MISMATCH = TRUE TRIM_SPACE = FALSE COMPRESSION = GZIP DATE_FORMAT = 'YYYY-MM-DD' TIMESTAMP_FORMAT = AUTO)`;

describe('applyScope on Snowflake (recorded connection)', () => {
  it('runs DDL and the bulk load before BEGIN and the whole apply between BEGIN and COMMIT', async () => {
    const { wh, log, connections, sqls, find } = recordingWarehouse();
    const { extract, result } = await applyClients(wh, 'run42_try1');
    expect(result).toEqual([
      { entity: 'clients', status: 'loaded', inserted: 3, updated: 0, deleted: 0, resurrected: 0, staged: 3, currentCount: 3, currentSum: '1234' },
    ]);

    const begin = find((s) => s === 'begin');
    const commit = find((s) => s === 'commit');
    expect(begin).toBeGreaterThan(0);
    expect(commit).toBeGreaterThan(begin);
    expect(sqls()).not.toContain('rollback');

    // Snowflake commits on DDL: none of it may run inside the transaction.
    const ddl = log.flatMap((l, i) => (/^(create|alter table|drop)/i.test(l.sql) ? [i] : []));
    expect(ddl.length).toBeGreaterThan(5);
    expect(Math.max(...ddl)).toBeLessThan(begin);
    expect(sqls()).toContain(
      'create table if not exists "ANALYTICS"."HISTORY"."CLIENTS_HISTORY" (\n  "TENANT_ID" VARCHAR not null,\n  "CLIENT_ID" VARCHAR not null,\n  "NAME" VARCHAR,\n  "BILLING_COUNTRY" VARCHAR,\n  "BILLING_CURRENCY" VARCHAR,\n  "CONTACT_EMAIL" VARCHAR,\n  "STATUS" VARCHAR,\n  valid_from TIMESTAMP_TZ(6) not null,\n  valid_to TIMESTAMP_TZ(6),\n  is_current boolean not null,\n  is_deleted boolean not null,\n  row_hash char(64) not null,\n  source_updated_at TIMESTAMP_TZ(6),\n  run_id NUMBER(19,0) not null,\n  closed_by_run_id NUMBER(19,0)\n)',
    );
    expect(sqls().some((s) => s.startsWith('create unique index'))).toBe(false);
    // Analysts' roles keep their grants on the current view when it is replaced.
    expect(sqls()).toContain(
      'create or replace view "ANALYTICS"."HISTORY"."CLIENTS_CURRENT" copy grants as select * from "ANALYTICS"."HISTORY"."CLIENTS_HISTORY" where is_current and not is_deleted',
    );

    const stagingDdl = find((s) => s.startsWith('create temporary table "STG_CLIENTS_RUN42_TRY1" ("TENANT_ID" VARCHAR, "CLIENT_ID" VARCHAR, '));
    const put = find((s) => s.startsWith('PUT '));
    const copy = find((s) => s.startsWith('COPY INTO '));
    expect(stagingDdl).toBeGreaterThan(-1);
    expect(put).toBeGreaterThan(stagingDdl);
    expect(copy).toBeGreaterThan(put);
    expect(copy).toBeLessThan(begin);
    expect(log[put]!.sql).toBe(
      `PUT 'file://${extract.entities[0]!.file}' @~/hubflow/run42_try1/clients/ AUTO_COMPRESS = FALSE SOURCE_COMPRESSION = GZIP OVERWRITE = TRUE`,
    );
    expect(log[put]!.sql.startsWith("PUT 'file:///")).toBe(true);
    expect(log[copy]!.sql).toBe(
      'COPY INTO "STG_CLIENTS_RUN42_TRY1" ("TENANT_ID", "CLIENT_ID", "NAME", "BILLING_COUNTRY", "BILLING_CURRENCY", "CONTACT_EMAIL", "STATUS", "SOURCE_UPDATED_AT", "ROW_HASH") ' +
        `FROM @~/hubflow/run42_try1/clients/ FILES = ('clients.tsv.gz') ${FORMAT} ON_ERROR = ABORT_STATEMENT PURGE = TRUE`,
    );

    // Between BEGIN and COMMIT, in this order, on the connection that loaded the staging table.
    const inTransaction = log.slice(begin + 1, commit);
    const at = (test: (sql: string) => boolean) => inTransaction.findIndex((l) => test(l.sql));
    const steps = [
      at((s) =>
        /^select b\.entity, .* from "ANALYTICS"\."HISTORY"\."LOAD_BATCHES" b join \(select entity, max\(snapshot_at\) as last_at from "ANALYTICS"\."HISTORY"\."LOAD_BATCHES" where tenant_id = 'acme' and entity in \('clients'\)/s.test(
          s,
        ),
      ),
      at(
        (s) =>
          s.startsWith('insert into "CHG_CLIENTS_RUN42_TRY1" (change_type, "TENANT_ID", "CLIENT_ID", ') &&
          s.includes(
            'from "STG_CLIENTS_RUN42_TRY1" s\nfull join (select * from "ANALYTICS"."HISTORY"."CLIENTS_HISTORY" h where h.tenant_id = \'acme\' and h.is_current) c on s."TENANT_ID" = c."TENANT_ID" and s."CLIENT_ID" = c."CLIENT_ID"',
          ),
      ),
      at((s) => s.startsWith('select change_type, count(*) as n from "CHG_CLIENTS_RUN42_TRY1" group by change_type')),
      at((s) =>
        s.startsWith(
          'insert into "ANALYTICS"."HISTORY"."CLIENTS_CHANGES" ("TENANT_ID", "CLIENT_ID", valid_from, run_id, change_type, column_name, old_value, new_value)',
        ),
      ),
      at((s) =>
        s.startsWith(
          'update "ANALYTICS"."HISTORY"."CLIENTS_HISTORY" h set valid_to = c.valid_from, is_current = false, closed_by_run_id = 42\nfrom "CHG_CLIENTS_RUN42_TRY1" c\nwhere',
        ),
      ),
      at((s) => s.startsWith('insert into "ANALYTICS"."HISTORY"."CLIENTS_HISTORY" ("TENANT_ID", "CLIENT_ID", "NAME", ')),
      at(
        (s) =>
          s.startsWith(
            'insert into "ANALYTICS"."HISTORY"."LOAD_BATCHES" (entity, tenant_id, interval_start, interval_end, logical_date, run_id, snapshot_at,',
          ) &&
          s.includes(
            "values ('clients', 'acme', to_timestamp_tz('2025-12-28 00:00:00.000000000 +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'), to_timestamp_tz('2025-12-29 00:00:00.000000000 +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'), '2025-12-28', 42, to_timestamp_tz('2025-12-28 10:00:00.000000000 +00:00', 'YYYY-MM-DD HH24:MI:SS.FF9 TZH:TZM'), null",
          ),
      ),
    ];
    expect(
      steps.every((i) => i >= 0),
      JSON.stringify(steps),
    ).toBe(true);
    expect([...steps].sort((a, b) => a - b)).toEqual(steps);
    const applyConn = log[begin]!.conn;
    expect(log.filter((l) => l.conn === applyConn && /^(PUT|COPY|create temporary)/.test(l.sql))).toHaveLength(4);
    expect(inTransaction.every((l) => l.conn === applyConn)).toBe(true);

    // Every session: UTC and its settings first, its connection destroyed at the end.
    expect(connections).toHaveLength(2);
    for (const c of connections) {
      const own = log.filter((l) => l.conn === c.id).map((l) => l.sql);
      expect(own.slice(0, 6)).toEqual([
        "ALTER SESSION SET TIMEZONE = 'UTC'",
        "ALTER SESSION SET QUERY_TAG = 'hubflow'",
        "ALTER SESSION SET TIMESTAMP_INPUT_FORMAT = 'AUTO'",
        "ALTER SESSION SET DATE_OUTPUT_FORMAT = 'YYYY-MM-DD'",
        "ALTER SESSION SET TIMESTAMP_TZ_OUTPUT_FORMAT = 'YYYY-MM-DD HH24:MI:SS.FF6TZH'",
        'ALTER SESSION SET ERROR_ON_NONDETERMINISTIC_UPDATE = TRUE',
      ]);
      expect(c.destroyed).toBe(true);
    }
  });

  it('gives every attempt its own stage path and its own temporary tables', async () => {
    const { wh, log } = recordingWarehouse();
    await applyClients(wh, 'run42_try1');
    await applyClients(wh, 'run42_try2');
    const puts = log.filter((l) => l.sql.startsWith('PUT ')).map((l) => / (@\S+) /.exec(l.sql)![1]);
    expect(puts).toEqual(['@~/hubflow/run42_try1/clients/', '@~/hubflow/run42_try2/clients/']);
    const temps = log.filter((l) => l.sql.startsWith('create temporary table ')).map((l) => /^create temporary table (\S+)/.exec(l.sql)![1]);
    expect(temps).toEqual(['"STG_CLIENTS_RUN42_TRY1"', '"CHG_CLIENTS_RUN42_TRY1"', '"STG_CLIENTS_RUN42_TRY2"', '"CHG_CLIENTS_RUN42_TRY2"']);
    const copies = log.filter((l) => l.sql.startsWith('COPY INTO ')).map((l) => /^COPY INTO (\S+) .* FROM (\S+) /.exec(l.sql)!.slice(1));
    expect(copies).toEqual([
      ['"STG_CLIENTS_RUN42_TRY1"', '@~/hubflow/run42_try1/clients/'],
      ['"STG_CLIENTS_RUN42_TRY2"', '@~/hubflow/run42_try2/clients/'],
    ]);
  });

  const skipped: [string, Script, RegExp, boolean][] = [
    [
      'a file COPY reports as LOAD_SKIPPED',
      { copy: () => [{ FILE: 'hubflow/r/clients/clients.tsv.gz', STATUS: 'LOAD_SKIPPED', ROWS_PARSED: 0n, ROWS_LOADED: 0n }] },
      /LOAD_SKIPPED/,
      true,
    ],
    [
      'a COPY that processed no file (skipped as loaded within 64 days)',
      { copy: () => [{ status: 'Copy executed with 0 files processed.' }] },
      /loaded no file \(Snowflake: 'Copy executed with 0 files processed\.'\)/,
      true,
    ],
    ['a COPY that loaded fewer rows than were staged', { staged: 2 }, /clients of acme: the warehouse loaded 2 rows of 3 staged; nothing was applied/, false],
  ];

  it.each(skipped)('rejects %s before BEGIN, and applies nothing', async (_name, script, message, removes) => {
    const { wh, sqls } = recordingWarehouse(script);
    const applying = applyClients(wh, 'run42_try1');
    await expect(applying).rejects.toThrow(message);
    await expect(applying).rejects.toMatchObject({ name: 'RetryableError' });
    expect(sqls()).not.toContain('begin');
    expect(sqls()).not.toContain('commit');
    expect(sqls().filter((s) => /^(insert|update|delete|merge) /.test(s))).toEqual([]);
    // A failed load removes its upload; a successful one was purged by COPY itself.
    expect(sqls().includes('REMOVE @~/hubflow/run42_try1/clients/')).toBe(removes);
  });

  it('rolls back, without committing, a mass delete beyond the guard', async () => {
    const { wh, sqls, find, connections } = recordingWarehouse({
      counts: [
        { CHANGE_TYPE: 'delete', N: 50n },
        { CHANGE_TYPE: 'update', N: 1n },
      ],
      totals: [{ N: 100n, S: '99' }],
    });
    await expect(applyClients(wh, 'run42_try1')).rejects.toMatchObject({
      name: 'MassDeleteError',
      message: expect.stringMatching(/deletes 50 of 100 live rows/),
    });
    const begin = find((s) => s === 'begin');
    expect(begin).toBeGreaterThan(0);
    // The scope's lock is the transaction's first statement: a second load of the scope waits there.
    expect(find((s) => s.startsWith('update "ANALYTICS"."HISTORY"."LOAD_LOCKS" set locked_at'))).toBe(begin + 1);
    expect(find((s) => s.startsWith('insert into "CHG_CLIENTS_RUN42_TRY1"'))).toBeGreaterThan(begin);
    expect(find((s) => s.startsWith('select 1 as ok from "ANALYTICS"."HISTORY"."DELETE_APPROVALS"'))).toBeGreaterThan(begin);
    expect(find((s) => s === 'rollback')).toBeGreaterThan(begin);
    expect(sqls()).not.toContain('commit');
    // Nothing written but the scope's lock row, whose update the rollback undoes too.
    expect(sqls().filter((s) => /^(insert into "ANALYTICS"|update )/.test(s) && !s.includes('"LOAD_LOCKS"'))).toEqual([]);
    expect(connections.every((c) => c.destroyed)).toBe(true);
  });

  it('skips a snapshot older than the one already applied, before any upload', async () => {
    const { wh, sqls } = recordingWarehouse({ ledger: [{ ENTITY: 'clients', SNAPSHOT_AT: '2025-12-29T10:00:00.000000Z', RUN_ID: 43n, THIS_INTERVAL: 0n }] });
    await expect(applyClients(wh, 'run42_try3')).rejects.toMatchObject({
      name: 'SkipTaskError',
      message: expect.stringMatching(
        /acme: this snapshot \(2025-12-28T10:00:00.000000Z\) is older than the one run 43 applied \(2025-12-29T10:00:00.000000Z, clients\)/,
      ),
    });
    expect(sqls().some((s) => /^(PUT|COPY|begin|insert|update)/.test(s))).toBe(false);
  });

  it('changes nothing, and writes no ledger row, when a later snapshot of a loaded interval equals history', async () => {
    const { wh, sqls } = recordingWarehouse({
      ledger: [{ ENTITY: 'clients', SNAPSHOT_AT: '2025-12-28T09:00:00.000000Z', RUN_ID: 41n, THIS_INTERVAL: 1n }],
      counts: [],
    });
    const { result } = await applyClients(wh, 'run42_try4');
    expect(result).toMatchObject([{ entity: 'clients', status: 'unchanged', inserted: 0, updated: 0, deleted: 0 }]);
    expect(sqls().filter((s) => /^(insert into "ANALYTICS"|update "ANALYTICS")/.test(s) && !s.includes('"LOAD_LOCKS"'))).toEqual([]);
    expect(sqls()).toContain('commit');
  });

  /** The clients snapshot with one more client rejected at extract: its key staged beside the snapshot. */
  async function applyWithRejectedKey(wh: Warehouse, attempt: string) {
    const extract = await stage(clients, 'acme', SNAPSHOT, CLIENT_ROWS);
    const keys = path.join(path.dirname(extract.entities[0]!.file!), 'clients.rejected-keys.tsv.gz');
    await writeFile(keys, gzipSync('acme\tC9\n'));
    extract.entities[0]!.rejectedKeys = { file: keys, count: 1 };
    return applyScope({ warehouse: wh, entities: { clients }, extract, runId: 42, interval: utcDayInterval('2025-12-28'), attempt });
  }
  const copyByFile = (rejectedLoaded: bigint) => (sql: string) => {
    const [, folder, name] = /FROM @~\/(\S+) FILES = \('([^']+)'\)/.exec(sql)!;
    const n = name!.includes('rejected') ? rejectedLoaded : 3n;
    return [{ FILE: `${folder}${name}`, STATUS: 'LOADED', ROWS_PARSED: n, ROWS_LOADED: n }];
  };

  it('loads the rejected keys before BEGIN and leaves them out of the delete inference: a reject is unknown today, not deleted', async () => {
    const { wh, sqls, find } = recordingWarehouse({ copy: copyByFile(1n) });
    await applyWithRejectedKey(wh, 'run42_try1');
    const begin = find((s) => s === 'begin');
    const ddl = find((s) => s === 'create temporary table "REJ_CLIENTS_RUN42_TRY1" ("TENANT_ID" VARCHAR, "CLIENT_ID" VARCHAR)');
    const copy = find((s) =>
      s.startsWith(
        'COPY INTO "REJ_CLIENTS_RUN42_TRY1" ("TENANT_ID", "CLIENT_ID") FROM @~/hubflow/run42_try1/clients-rejected/ FILES = (\'clients.rejected-keys.tsv.gz\') ',
      ),
    );
    expect(ddl).toBeGreaterThan(-1);
    expect(copy).toBeGreaterThan(ddl);
    expect(begin).toBeGreaterThan(copy);
    const classify = sqls().find((s) => s.startsWith('insert into "CHG_CLIENTS_RUN42_TRY1"'))!;
    // A join, not a correlated EXISTS inside OR, which Snowflake cannot evaluate.
    expect(classify).toContain(
      '\nleft join (select distinct "TENANT_ID", "CLIENT_ID" from "REJ_CLIENTS_RUN42_TRY1") r on r."TENANT_ID" = c."TENANT_ID" and r."CLIENT_ID" = c."CLIENT_ID"\nwhere ',
    );
    expect(classify).toContain('or (s."CLIENT_ID" is null and not c.is_deleted and r."CLIENT_ID" is null)');
    expect(classify).not.toMatch(/exists/i);
    expect(sqls()).toContain('commit');
  });

  it('applies nothing when the warehouse loads fewer rejected keys than were staged', async () => {
    const { wh, sqls } = recordingWarehouse({ copy: copyByFile(0n) });
    await expect(applyWithRejectedKey(wh, 'run42_try1')).rejects.toMatchObject({
      name: 'RetryableError',
      message: expect.stringContaining('loaded 0 of 1 rejected keys'),
    });
    expect(sqls()).not.toContain('begin');
  });

  it('rolls back a load that would leave live rows of keys the hub does not give the tenant (the leak check)', async () => {
    // Three staged clients, and the warehouse counting five live current rows for the tenant after the apply.
    const { wh, sqls } = recordingWarehouse({ totals: [{ N: 5n, S: '1234' }] });
    await expect(applyClients(wh, 'run9_try1')).rejects.toMatchObject({
      name: 'PermanentError',
      message: expect.stringContaining(
        'the warehouse would hold 5 live current rows, but the hub gives this scope 3 (and 0 rejected keys kept as they were); 2 rows of keys',
      ),
    });
    expect(sqls()).toContain('rollback');
    expect(sqls()).not.toContain('commit');
    expect(sqls().some((s) => s.startsWith('insert into "ANALYTICS"."HISTORY"."LOAD_BATCHES"'))).toBe(false);
  });

  it('escapes quotes and backslashes of values in every literal and path', async () => {
    const tenant = "o'neil\\acme";
    const { wh, sqls } = recordingWarehouse();
    // The ledger query must name the escaped tenant; the recorded answer is looked up by its start only.
    await applyClients(wh, `run7/${tenant}/1`, tenant);
    const escaped = "'o''neil\\\\acme'";
    expect(sqls().find((s) => s.startsWith('select b.entity, '))).toContain(`where tenant_id = ${escaped} and entity in ('clients')`);
    expect(sqls().find((s) => s.startsWith('insert into "CHG_'))).toContain(`where h.tenant_id = ${escaped} and h.is_current`);
    expect(sqls().find((s) => s.startsWith('insert into "ANALYTICS"."HISTORY"."LOAD_BATCHES"'))).toContain(`values ('clients', ${escaped}, to_timestamp_tz(`);
    expect(sqls().filter((s) => s.includes("'o'neil") || s.includes("o''neil\\acme"))).toEqual([]);
    const put = sqls().find((s) => s.startsWith('PUT '))!;
    expect(put).toMatch(/ @~\/hubflow\/run7\/o_neil_acme\/1\/clients-[0-9a-f]{10}\/ /);
    expect(stagePath(`run7/${tenant}/1/clients`)).not.toBe(stagePath('run7/o_neil_acme/1/clients'));
  });
});
