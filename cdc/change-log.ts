import type { Warehouse, WarehouseSession } from '../warehouse/contract.ts';
import type { HistoryApplier, PlannedVersions, Temps, Timed } from './history.ts';
import { canonicalEncoding } from '../transforms/row-hash.ts';
import type { Lsn } from './lsn.ts';
import { type Column, insertRows } from './rows.ts';
import type { CdcChange, CdcSink, CdcTransaction, InitialCut } from './sink.ts';

/**
 * A sink that keeps every captured change as a row of `cdc_changes` in the warehouse, in commit
 * order, with its ledger (`cdc_ledger`, one row per slot) written in the same transaction. It
 * speaks only the warehouse contract: the SQL is spelled by the dialect, never chosen by its
 * name. It is the durable record the SCD2 apply builds on, and what the tests compare with
 * the hub's own change record.
 */

export const CHANGES = 'cdc_changes';
export const CDC_LEDGER = 'cdc_ledger';
/** The change log's columns, in the order of its rows' values. */
const CHANGE_COLUMNS: Column[] = [
  { name: 'slot', kind: 'text' },
  { name: 'commit_lsn', kind: 'integer' },
  { name: 'seq', kind: 'integer' },
  { name: 'xid', kind: 'integer' },
  { name: 'commit_ts', kind: 'timestamp' },
  ...['entity', 'op', 'tenant_id', 'key_row', 'after_row'].map((name): Column => ({ name, kind: 'text' })),
];

function ddl(wh: Warehouse): string[] {
  const d = wh.dialect;
  const text = d.type('text');
  return [
    ...d.createSchema(wh.schema),
    `create table if not exists ${wh.table(CHANGES)} (slot ${text} not null, commit_lsn ${d.bigintType} not null, seq integer not null, xid ${d.bigintType},
       commit_ts ${d.timestampType} not null, entity ${text} not null, op ${text} not null, tenant_id ${text},
       key_row ${text} not null, after_row ${text})`,
    `create table if not exists ${wh.table(CDC_LEDGER)} (slot ${text} not null, applied_lsn ${d.bigintType} not null,
       consistent_point ${d.bigintType} not null, transactions ${d.bigintType} not null, changes ${d.bigintType} not null, applied_at ${d.timestampType} not null)`,
    ...d.createIndex(wh.table(CHANGES), 'cdc_changes_order', 'slot, commit_lsn, seq'),
  ];
}

interface LedgerRow {
  applied_lsn: unknown;
  consistent_point: unknown;
  transactions: unknown;
  changes: unknown;
}

export interface ChangeLogOptions {
  /** Also apply each batch to the SCD2 history, in the same transaction (valid_from = the commit time). */
  history?: HistoryApplier;
}

/** A batch planned before its transaction. */
interface PlannedBatch {
  log: string[];
  versions: PlannedVersions[];
}

export class ChangeLogSink implements CdcSink {
  #ready: Promise<void> | undefined;
  readonly #prepared = new WeakMap<CdcTransaction[], PlannedBatch>();

  constructor(
    private readonly wh: Warehouse,
    private readonly options: ChangeLogOptions = {},
  ) {}

  #ensure(): Promise<void> {
    this.#ready ??= this.wh.session(async (s) => {
      for (const statement of ddl(this.wh)) await s.query(statement);
    });
    this.#ready.catch(() => (this.#ready = undefined));
    return this.#ready;
  }

  async appliedLsn(slot: string): Promise<Lsn | null> {
    await this.#ensure();
    return this.wh.session(async (s) => {
      const row = await this.#ledger(s, slot);
      return row ? BigInt(String(row.applied_lsn)) : null;
    });
  }

  async seed(cut: InitialCut, rows: AsyncIterable<CdcChange[]>): Promise<{ rows: number; tombstones: number }> {
    await this.#ensure();
    const history = this.options.history;
    const entities = Object.keys(history ? this.#entities() : {});
    const seed = async (s: WarehouseSession, temps: Map<string, Temps>) => {
      // A re-seed starts the slot's record over: its old changes belong to a slot that is gone.
      await s.query(`delete from ${this.wh.table(CHANGES)} where slot = ${this.wh.dialect.text(cut.slot)}`);
      let count = 0;
      for await (const batch of rows) {
        await writeChangeLog(s, this.wh, changeLogRows(cut.slot, [{ commitLsn: cut.consistentPoint, xid: null, commitTs: cut.snapshotAt, changes: batch }]));
        if (history) {
          for (const [entity, timed] of byEntity(batch.map((change) => ({ change, at: cut.snapshotAt })))) {
            // A row the history does not hold yet starts at the hub's own change time (as a first
            // nightly load does), never after the cut; a row it holds with other content changes at the cut.
            await history.apply(s, entity, temps.get(entity)!, timed, cut.snapshotAt);
          }
        }
        count += batch.length;
      }
      // The cut holds every row of the hub: a key history holds live that it lacks was deleted
      // while nothing streamed (a lost slot's gap), and is closed at the cut.
      let tombstones = 0;
      if (history) for (const entity of entities) tombstones += await history.tombstoneUnseen(s, entity, temps.get(entity)!, cut.snapshotAt);
      await this.#writeLedger(s, cut.slot, { applied: cut.consistentPoint, consistentPoint: cut.consistentPoint, transactions: 0, changes: 0 });
      return { rows: count, tombstones };
    };
    return this.#inTransaction(entities, seed, { seen: true });
  }

  /**
   * Plans a batch apart from the warehouse (its change-log rows and history versions): the
   * stream calls this for the next batch while the one before it is being applied.
   */
  prepare(slot: string, batch: CdcTransaction[]): void {
    this.#prepared.set(batch, this.#plan(slot, batch));
  }

  async apply(slot: string, batch: CdcTransaction[]): Promise<void> {
    if (!batch.length) return;
    await this.#ensure();
    const planned = this.#prepared.get(batch) ?? this.#plan(slot, batch);
    this.#prepared.delete(batch);
    const touched = planned.versions.map((v) => v.entity);
    await this.#inTransaction(touched, async (s, temps) => {
      const ledger = await this.#ledger(s, slot);
      if (!ledger) throw new Error(`cdc ledger: slot ${slot} has no initial cut in the warehouse; run hubflow cdc setup`);
      const applied = BigInt(String(ledger.applied_lsn));
      // What the ledger already holds is never applied twice, whoever sends it again.
      const fresh = batch.filter((tx) => tx.commitLsn >= applied);
      const p = fresh.length === batch.length ? planned : this.#plan(slot, fresh);
      await writeChangeLog(s, this.wh, p.log);
      for (const v of p.versions) await this.options.history!.write(s, temps.get(v.entity)!, v);
      const last = fresh.at(-1);
      if (!last) return;
      await this.#writeLedger(s, slot, {
        applied: last.endLsn,
        consistentPoint: BigInt(String(ledger.consistent_point)),
        transactions: Number(ledger.transactions) + fresh.length,
        changes: Number(ledger.changes) + fresh.reduce((n, tx) => n + tx.changes.length, 0),
      });
    });
  }

  /** A batch's change-log rows and, with a history, each entity's versions. */
  #plan(slot: string, txs: readonly CdcTransaction[]): PlannedBatch {
    const history = this.options.history;
    const versions: PlannedVersions[] = [];
    if (history) {
      const timed = txs.flatMap((tx) => tx.changes.map((change) => ({ change, at: tx.commitTs })));
      for (const [entity, items] of byEntity(timed)) versions.push(history.plan(entity, items));
    }
    return { log: changeLogRows(slot, txs), versions };
  }

  /** `fn` in one transaction; the history's temporary tables for `entities` are made before it (DDL may commit). */
  async #inTransaction<T>(
    entities: Iterable<string>,
    fn: (s: WarehouseSession, temps: Map<string, Temps>) => Promise<T>,
    options: { seen?: boolean } = {},
  ): Promise<T> {
    return this.wh.session(async (s) => {
      const temps = this.options.history ? await this.options.history.createTemps(s, entities, options) : new Map<string, Temps>();
      await s.query('begin');
      try {
        const result = await fn(s, temps);
        await s.query('commit');
        return result;
      } catch (err) {
        await s.query('rollback').catch(() => undefined);
        throw err;
      } finally {
        await this.options.history?.cleanup(s, temps);
      }
    });
  }

  #entities(): Record<string, unknown> {
    return this.options.history?.entities ?? {};
  }

  async #ledger(s: WarehouseSession, slot: string): Promise<LedgerRow | undefined> {
    const [row] = await s.query<LedgerRow>(
      `select applied_lsn, consistent_point, transactions, changes from ${this.wh.table(CDC_LEDGER)} where slot = ${this.wh.dialect.text(slot)}`,
    );
    return row;
  }

  async #writeLedger(s: WarehouseSession, slot: string, l: { applied: Lsn; consistentPoint: Lsn; transactions: number; changes: number }): Promise<void> {
    const d = this.wh.dialect;
    await s.query(`delete from ${this.wh.table(CDC_LEDGER)} where slot = ${d.text(slot)}`);
    await s.query(
      `insert into ${this.wh.table(CDC_LEDGER)} (slot, applied_lsn, consistent_point, transactions, changes, applied_at)
       values (${d.text(slot)}, ${l.applied}, ${l.consistentPoint}, ${l.transactions}, ${l.changes}, current_timestamp)`,
    );
  }
}

/** Change-log rows into the change log, in the caller's transaction. */
export function writeChangeLog(s: WarehouseSession, wh: Warehouse, rows: readonly string[]): Promise<void> {
  return insertRows(s, wh.table(CHANGES), CHANGE_COLUMNS, rows);
}

/** Changes of one or more transactions as change-log rows (lines of COPY text). */
export function changeLogRows(slot: string, txs: readonly { commitLsn: Lsn; xid: number | null; commitTs: string; changes: CdcChange[] }[]): string[] {
  const rows: string[] = [];
  for (const tx of txs) {
    const lsn = String(tx.commitLsn);
    const xid = tx.xid === null ? null : String(tx.xid);
    for (const c of tx.changes) {
      rows.push(
        canonicalEncoding([
          slot,
          lsn,
          String(c.seq),
          xid,
          tx.commitTs,
          c.entity,
          c.op,
          c.tenant,
          JSON.stringify(c.key),
          c.after === null ? null : JSON.stringify(c.after),
        ]),
      );
    }
  }
  return rows;
}

/** Changes grouped by entity, each group in the order given. */
function byEntity(timed: Timed[]): Map<string, Timed[]> {
  const out = new Map<string, Timed[]>();
  for (const t of timed) {
    const group = out.get(t.change.entity);
    if (group) group.push(t);
    else out.set(t.change.entity, [t]);
  }
  return out;
}
