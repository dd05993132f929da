import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { brotliCompressSync, gzipSync } from 'node:zlib';
import { afterAll, describe, expect, it } from 'vitest';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import { applyScope, utcDayInterval } from '../../tasks/history/apply.ts';
import { EXTENSION } from '../../tasks/history/extract.ts';
import { snapshotFields, stagingColumnNames } from '../../tasks/history/layout.ts';
import { stagingDdl } from '../../tasks/history/sql.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import type { Logged } from './recording.ts';
import { applyClients, CLIENT_ROWS, checksumOf, clients, stage, stagedLine, type Values } from './staging.ts';
import { targets } from './targets.ts';

/**
 * One suite, every dialect: what a load does must not depend on the warehouse. Each test runs
 * on PostgreSQL (live), on Snowflake at the SQL it issues, and on Snowflake live when
 * SNOWFLAKE_* is set. Every target's statements are logged the same way, so the order and
 * the transactions are asserted alike; the rows a user would query are read back where the
 * warehouse holds them.
 */

const SNAPSHOT_AT = '2025-12-28T10:00:00.000000Z';
const DAY2 = '2025-12-29T10:00:00.000000Z';
const DAY3 = '2025-12-30T10:00:00.000000Z';

/** `n` clients of acme, C1..Cn. */
const many = (n: number): Values[] =>
  Array.from({ length: n }, (_, i) => ['acme', `C${i + 1}`, `Client ${i + 1}`, 'GB', 'GBP', null, 'active', '2025-12-27 09:00:00+00']);

/** Statements that write to the history schema, but for the scope's lock row. */
function writes(wh: Warehouse, log: Logged[]): string[] {
  const schema = wh.table('x').slice(0, -wh.dialect.id('x').length);
  return log
    .map((l) => l.sql)
    .filter((sql) => {
      const target = /^(?:insert into|update|delete from) (\S+)/i.exec(sql)?.[1];
      return target?.startsWith(schema) && target !== wh.table('load_locks');
    });
}

const index = (log: Logged[], test: (sql: string) => boolean) => log.findIndex((l) => test(l.sql));

describe.each(targets())('warehouse conformance: $name', (t) => {
  afterAll(() => t.close(), 120_000);

  describe.skipIf(t.skip !== null)(t.skip ?? 'runs', () => {
    it('makes its tables and loads the snapshot before BEGIN, then applies it between BEGIN and COMMIT on one session, the scope locked first', async () => {
      const { wh, log } = await t.open({ totals: [{ N: 3n, S: checksumOf(clients, CLIENT_ROWS) }] });
      const d = wh.dialect;
      const { extract, result } = await applyClients(wh, 'run42_try1');
      expect(result).toEqual([
        {
          entity: 'clients',
          status: 'loaded',
          inserted: 3,
          updated: 0,
          deleted: 0,
          resurrected: 0,
          staged: 3,
          currentCount: 3,
          currentSum: extract.entities[0]!.sum,
        },
      ]);

      const begin = index(log, (s) => s === 'begin');
      const commit = index(log, (s) => s === 'commit');
      expect(begin).toBeGreaterThan(0);
      expect(commit).toBeGreaterThan(begin);
      expect(log.map((l) => l.sql)).not.toContain('rollback');

      // Snowflake commits on DDL: none of it may run inside the transaction, on any warehouse.
      const ddl = log.flatMap((l, i) => (/^(create|alter|drop)/i.test(l.sql) ? [i] : []));
      expect(ddl.length).toBeGreaterThan(5);
      expect(Math.max(...ddl)).toBeLessThan(begin);
      const staging = d.id('stg_clients_run42_try1');
      const load = index(log, (s) => s === `load ${staging}`);
      expect(index(log, (s) => s.startsWith(`create temporary table ${staging} (`))).toBeLessThan(load);
      expect(load).toBeLessThan(begin);

      const lock = wh.adapter.scopeLock({ table: wh.table('load_locks'), key: 'acme', runId: 42 });
      for (const statement of lock.prepare) expect(index(log, (s) => s === statement)).toBeLessThan(begin);
      expect(log[begin + 1]!.sql).toBe(lock.acquire);

      // Between BEGIN and COMMIT, after the lock, in this order.
      const inTransaction = log.slice(begin + 1, commit);
      const steps = [
        (s: string) => s.startsWith('select b.entity, '),
        (s: string) => s.startsWith(`insert into ${d.id('chg_clients_run42_try1')} (change_type, `),
        (s: string) => s.startsWith(`select change_type, count(*) as n from ${d.id('chg_clients_run42_try1')}`),
        (s: string) => s.startsWith(`insert into ${wh.table('clients_changes')} (`),
        (s: string) => s.startsWith(`update ${wh.table('clients_history')} h set valid_to = c.valid_from, is_current = false, closed_by_run_id = 42`),
        (s: string) => s.startsWith(`insert into ${wh.table('clients_history')} (`),
        (s: string) => s.startsWith(`insert into ${wh.table('load_batches')} (`),
      ].map((test) => index(inTransaction, test));
      expect(
        steps.every((i) => i > 0),
        JSON.stringify(steps),
      ).toBe(true);
      expect([...steps].sort((a, b) => a - b)).toEqual(steps);

      // The session that loaded the staging table applies it, and ends with the commit.
      const own = log.filter((l) => l.conn === log[begin]!.conn).map((l) => l.sql);
      expect(own).toContain(`load ${staging}`);
      expect(own.at(-1)).toBe('commit');
    });

    it.skipIf(!t.live)(
      'keeps every version: a change closes the old row where the new starts, a delete leaves a tombstone, a returning key is resurrected',
      async () => {
        const { wh } = await t.open();
        const d = wh.dialect;
        const day2: Values[] = [['acme', 'C1', 'Acme Group', 'GB', 'GBP', 'ops@acme.test', 'active', '2025-12-29 09:00:00+00'], CLIENT_ROWS[1]!];
        await applyClients(wh, 'r1', 'acme', { runId: 1 });
        const second = await stage(clients, 'acme', DAY2, day2);
        const apply = (extract: typeof second, runId: number, day: string, attempt: string) =>
          applyScope({ warehouse: wh, entities: { clients }, extract, runId, interval: utcDayInterval(day), attempt });
        expect((await apply(second, 2, '2025-12-29', 'r2'))[0]).toMatchObject({
          status: 'loaded',
          inserted: 0,
          updated: 1,
          deleted: 1,
          resurrected: 0,
          currentCount: 2,
        });
        // A retry of an applied snapshot changes nothing.
        expect((await apply(second, 2, '2025-12-29', 'r2b'))[0]).toMatchObject({ status: 'already_loaded', currentCount: 2 });
        const third = await stage(clients, 'acme', DAY3, [...day2, CLIENT_ROWS[2]!]);
        expect((await apply(third, 3, '2025-12-30', 'r3'))[0]).toMatchObject({
          status: 'loaded',
          resurrected: 1,
          currentCount: 3,
          currentSum: third.entities[0]!.sum,
        });

        const rows = await wh.session((s) =>
          s.query<Record<string, unknown>>(
            `select ${d.id('client_id')} as k, ${d.id('name')} as name, ${d.isoText('valid_from')} as valid_from, ${d.isoText('valid_to')} as valid_to,
             is_current, is_deleted, run_id, closed_by_run_id from ${wh.table('clients_history')} order by 1, valid_from`,
          ),
        );
        const version = (r: Record<string, unknown>) => [
          r.k,
          r.name,
          r.valid_from,
          r.valid_to,
          Boolean(r.is_current),
          Boolean(r.is_deleted),
          Number(r.run_id),
          r.closed_by_run_id === null ? null : Number(r.closed_by_run_id),
        ];
        expect(rows.map(version)).toEqual([
          ['C1', 'Acme "Ltd"', '2025-12-27T09:00:00.000000Z', '2025-12-29T09:00:00.000000Z', false, false, 1, 2],
          ['C1', 'Acme Group', '2025-12-29T09:00:00.000000Z', null, true, false, 2, null],
          ['C2', 'Tab\there', '2025-12-27T09:00:00.123456Z', null, true, false, 1, null],
          ['C3', "O'Brien \\ Sons", '2025-12-28T08:00:00.000000Z', DAY2, false, false, 1, 2],
          // The tombstone carries the last values; the key's return starts just after the snapshot that lost it.
          ['C3', "O'Brien \\ Sons", DAY2, '2025-12-29T10:00:00.000001Z', false, true, 2, 3],
          ['C3', "O'Brien \\ Sons", '2025-12-29T10:00:00.000001Z', null, true, false, 3, null],
        ]);
        const changes = await wh.session((s) =>
          s.query<Record<string, unknown>>(
            `select ${d.id('client_id')} as k, run_id, change_type, column_name, old_value, new_value from ${wh.table('clients_changes')} order by 2, 1, 4`,
          ),
        );
        expect(changes.map((r) => [r.k, Number(r.run_id), r.change_type, r.column_name, r.old_value, r.new_value])).toEqual([
          ['C1', 1, 'insert', null, null, null],
          ['C2', 1, 'insert', null, null, null],
          ['C3', 1, 'insert', null, null, null],
          ['C1', 2, 'update', 'name', 'Acme "Ltd"', 'Acme Group'],
          ['C3', 2, 'delete', null, null, null],
          ['C3', 3, 'resurrect', null, null, null],
        ]);
        const current = await wh.session((s) => s.query<{ k: string }>(`select ${d.id('client_id')} as k from ${wh.table('clients_current')} order by 1`));
        expect(current.map((r) => r.k)).toEqual(['C1', 'C2', 'C3']);
      },
    );

    it('rolls back, without committing, a mass delete beyond the guard: history is as it was', async () => {
      const { wh, log } = await t.open({ counts: [{ CHANGE_TYPE: 'delete', N: 7n }], totals: [{ N: 8n, S: '0' }], staged: 1 });
      await t.arrange(() => applyClients(wh, 'r1', 'acme', { rows: many(8) }));
      const from = log.length;
      await expect(applyClients(wh, 'r2', 'acme', { rows: many(1), snapshotAt: DAY2, day: '2025-12-29' })).rejects.toMatchObject({
        name: 'MassDeleteError',
        message: expect.stringMatching(/deletes 7 of 8 live rows/),
      });
      const act = log.slice(from);
      const begin = index(act, (s) => s === 'begin');
      expect(begin).toBeGreaterThan(0);
      expect(act[begin + 1]!.sql).toBe(wh.adapter.scopeLock({ table: wh.table('load_locks'), key: 'acme', runId: 42 }).acquire);
      expect(index(act, (s) => s === 'rollback')).toBeGreaterThan(begin);
      expect(act.map((l) => l.sql)).not.toContain('commit');
      expect(writes(wh, act).filter((s) => !s.startsWith(`insert into ${wh.table('clients_changes')}`))).toEqual([]);
      if (t.live) {
        const [n] = await wh.session((s) => s.query<{ n: unknown }>(`select count(*) as n from ${wh.table('clients_current')}`));
        expect(Number(n!.n)).toBe(8);
      }
    });

    it('skips a snapshot older than the one already applied, before any load', async () => {
      const { wh, log } = await t.open({ ledger: [{ ENTITY: 'clients', SNAPSHOT_AT: DAY2, RUN_ID: 43n, THIS_INTERVAL: 0n }] });
      await t.arrange(() => applyClients(wh, 'r43', 'acme', { snapshotAt: DAY2, runId: 43, day: '2025-12-29' }));
      const from = log.length;
      await expect(applyClients(wh, 'r42')).rejects.toMatchObject({
        name: 'SkipTaskError',
        message: expect.stringMatching(
          /acme: this snapshot \(2025-12-28T10:00:00.000000Z\) is older than the one run 43 applied \(2025-12-29T10:00:00.000000Z, clients\)/,
        ),
      });
      expect(log.slice(from).filter((l) => /^(load|begin|insert|update)/.test(l.sql))).toEqual([]);
    });

    it('changes nothing, and writes no ledger row, when a later snapshot of a loaded interval equals history', async () => {
      const earlier = '2025-12-28T09:00:00.000000Z';
      const { wh, log } = await t.open({ ledger: [{ ENTITY: 'clients', SNAPSHOT_AT: earlier, RUN_ID: 41n, THIS_INTERVAL: 1n }], counts: [] });
      await t.arrange(() => applyClients(wh, 'r41', 'acme', { snapshotAt: earlier, runId: 41 }));
      const from = log.length;
      const { result } = await applyClients(wh, 'r42');
      expect(result).toMatchObject([{ entity: 'clients', status: 'unchanged', inserted: 0, updated: 0, deleted: 0 }]);
      const act = log.slice(from);
      expect(writes(wh, act)).toEqual([]);
      expect(act.map((l) => l.sql)).toContain('commit');
    });

    it('leaves a key rejected today as it was: unknown, not deleted', async () => {
      const copy = (sql: string) => {
        const [, folder, name] = /FROM @~\/(\S+) FILES = \('([^']+)'\)/.exec(sql)!;
        const n = name!.includes('rejected') ? 1n : 2n;
        return [{ FILE: `${folder}${name}`, STATUS: 'LOADED', ROWS_PARSED: n, ROWS_LOADED: n }];
      };
      const { wh, log } = await t.open({ copy, counts: [], totals: [{ N: 3n, S: checksumOf(clients, CLIENT_ROWS) }] });
      const d = wh.dialect;
      await t.arrange(() => applyClients(wh, 'r1', 'acme', { runId: 1 }));
      const from = log.length;
      const extract = await stage(clients, 'acme', DAY2, CLIENT_ROWS.slice(0, 2), [['acme', 'C3']]);
      const [loaded] = await applyScope({ warehouse: wh, entities: { clients }, extract, runId: 2, interval: utcDayInterval('2025-12-29'), attempt: 'r2' });
      expect(loaded).toMatchObject({ status: 'loaded', inserted: 0, updated: 0, deleted: 0, currentCount: 3, currentSum: checksumOf(clients, CLIENT_ROWS) });

      const act = log.slice(from);
      const rejected = d.id('rej_clients_r2');
      expect(index(act, (s) => s === `load ${rejected}`)).toBeLessThan(index(act, (s) => s === 'begin'));
      const classify = act.find((l) => l.sql.startsWith(`insert into ${d.id('chg_clients_r2')}`))!.sql;
      // A join, not a correlated EXISTS inside OR, which Snowflake cannot evaluate.
      expect(classify).toContain(`\nleft join (select distinct ${d.id('tenant_id')}, ${d.id('client_id')} from ${rejected}) r on `);
      if (t.live) {
        const current = await wh.session((s) => s.query<{ k: string }>(`select ${d.id('client_id')} as k from ${wh.table('clients_current')} order by 1`));
        expect(current.map((r) => r.k)).toEqual(['C1', 'C2', 'C3']);
      }
    });

    it('gives every attempt its own temporary tables', async () => {
      const { wh, log } = await t.open();
      const d = wh.dialect;
      await applyClients(wh, 'run42_try1');
      await applyClients(wh, 'run42_try2');
      const temps = log.flatMap((l) => (l.sql.startsWith('create temporary table ') ? [l.sql.split(' ')[3]] : []));
      expect(temps).toEqual(['stg_clients_run42_try1', 'chg_clients_run42_try1', 'stg_clients_run42_try2', 'chg_clients_run42_try2'].map(d.id));
    });

    it.skipIf(!t.live)('spells literals, timestamps and hash sums so values come back as they went in', async () => {
      const { wh } = await t.open();
      const d = wh.dialect;
      const texts = ["it's", 'C:\\temp\\new', "\\'", 'tab\there', '', 'line\nbreak'];
      const instants = ['2025-12-28T10:00:00.123456Z', '2025-12-28T10:00:00.000000Z', '1900-01-01T00:00:00.000000Z'];
      const [row] = await wh.session((s) =>
        s.query<Record<string, unknown>>(
          `select ${[...texts.map((v, i) => `${d.text(v)} as t${i}`), ...instants.map((v, i) => `${d.isoText(d.timestamp(v))} as i${i}`), `cast(${d.int60(d.text('f'.repeat(64)))} as text) as h`].join(', ')}`,
        ),
      );
      expect(texts.map((_, i) => row![`t${i}`])).toEqual(texts);
      expect(instants.map((_, i) => row![`i${i}`])).toEqual(instants);
      expect(row!.h).toBe(String(2n ** 60n - 1n));
    });

    it('loads a staged file in the compression its adapter asks the extract for', async () => {
      const { wh } = await t.open();
      const d = wh.dialect;
      const lines = CLIENT_ROWS.map((values) => stagedLine(clients, values).line).join('');
      const { file: first } = (await stage(clients, 'acme', SNAPSHOT_AT, CLIENT_ROWS)).entities[0]!;
      const compress = { none: (b: Buffer) => b, gzip: gzipSync, brotli: brotliCompressSync };
      for (const configured of ['none', 'gzip', 'brotli'] as const) {
        const compression = wh.adapter.stagedCompression(configured);
        const file = path.join(path.dirname(first!), `clients-${configured}${EXTENSION[compression]}`);
        await writeFile(file, compress[compression](Buffer.from(lines)));
        const table = d.id(`cmp_${configured}`);
        const loaded = await wh.session(async (s) => {
          await s.query(stagingDdl(d, table, clients));
          return s.load(table, stagingColumnNames(clients), file, `cmp/${configured}`);
        });
        expect(loaded, configured).toBe(3);
      }
    });

    it.skipIf(!t.live)('holds every hub column type as the hub holds it', async () => {
      const { wh } = await t.open();
      const d = wh.dialect;
      const contracts = HUB_ENTITIES.contracts!;
      const fields = snapshotFields(contracts).filter((f) => f.role !== 'row_hash');
      const sample = { text: 'x', integer: '38', numeric: '1234.50', boolean: 't', date: '2025-12-28', timestamptz: '2025-12-28 10:00:00+00' };
      const nullable = (name: string) => contracts.columns[name]?.nullable === true;
      const row = fields.map((f) => (f.role === 'tenant' ? 'acme' : nullable(f.name) ? null : sample[f.type]));
      const extract = await stage(contracts, 'acme', SNAPSHOT_AT, [row]);
      await applyScope({ warehouse: wh, entities: { contracts }, extract, runId: 1, interval: utcDayInterval('2025-12-28'), attempt: 'types' });
      const tracked = fields.filter((f) => f.role === 'tracked');
      const [back] = await wh.session((s) =>
        s.query<Record<string, unknown>>(
          `select ${tracked.map((f, i) => `cast(${d.id(f.name)} as text) as c${i}`).join(', ')} from ${wh.table('contracts_current')}`,
        ),
      );
      const expected = { ...sample, boolean: 'true' };
      expect(tracked.map((_, i) => back![`c${i}`])).toEqual(tracked.map((f) => (nullable(f.name) ? null : expected[f.type])));
      expect(new Set(tracked.map((f) => f.type))).toEqual(new Set(['text', 'numeric', 'integer', 'boolean', 'date']));
    });
  });
});
