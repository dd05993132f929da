import type { Warehouse, WarehouseSession } from '../warehouse/contract.ts';
import { type CurrentVersion, type HistoryApplier, isoOf, type Temps, type Timed } from './history.ts';
import type { Lsn } from './lsn.ts';
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
const ROWS_PER_INSERT = 500;
const COLUMNS = ['slot', 'commit_lsn', 'seq', 'xid', 'commit_ts', 'entity', 'op', 'tenant_id', 'key_row', 'before_row', 'after_row'];

function ddl(wh: Warehouse): string[] {
  const d = wh.dialect;
  const text = d.type('text');
  return [
    ...d.createSchema(wh.schema),
    `create table if not exists ${wh.table(CHANGES)} (slot ${text} not null, commit_lsn ${d.bigintType} not null, seq integer not null, xid ${d.bigintType},
       commit_ts ${d.timestampType} not null, entity ${text} not null, op ${text} not null, tenant_id ${text},
       key_row ${text} not null, before_row ${text}, after_row ${text})`,
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

export class ChangeLogSink implements CdcSink {
  #ready: Promise<void> | undefined;

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
    // A row the history does not hold yet starts at the hub's own change time (as a first nightly
    // load does), never after the cut; a row it holds with other content changes at the cut.
    const at = (t: Timed, current: CurrentVersion | undefined) => {
      const own = isoOf(t.change.updatedAt);
      return current || own === null || own > cut.snapshotAt ? cut.snapshotAt : own;
    };
    const entities = Object.keys(history ? this.#entities() : {});
    const seed = async (s: WarehouseSession, temps: Map<string, Temps>) => {
      // A re-seed starts the slot's record over: its old changes belong to a slot that is gone.
      await s.query(`delete from ${this.wh.table(CHANGES)} where slot = ${this.wh.dialect.text(cut.slot)}`);
      let count = 0;
      for await (const batch of rows) {
        await this.#insert(s, cut.slot, batch, { commitLsn: cut.consistentPoint, xid: null, commitTs: cut.snapshotAt });
        if (history) {
          for (const [entity, timed] of byEntity(batch.map((change) => ({ change, at: cut.snapshotAt })))) {
            await history.apply(s, entity, temps.get(entity)!, timed, at);
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

  async apply(slot: string, batch: CdcTransaction[]): Promise<void> {
    if (!batch.length) return;
    await this.#ensure();
    const history = this.options.history;
    const touched = history ? new Set(batch.flatMap((tx) => tx.changes.map((c) => c.entity))) : [];
    await this.#inTransaction(touched, async (s, temps) => {
      const ledger = await this.#ledger(s, slot);
      if (!ledger) throw new Error(`cdc ledger: slot ${slot} has no initial cut in the warehouse; run hubflow cdc setup`);
      const applied = BigInt(String(ledger.applied_lsn));
      // What the ledger already holds is never applied twice, whoever sends it again.
      const fresh = batch.filter((tx) => tx.commitLsn >= applied);
      for (const tx of fresh) await this.#insert(s, slot, tx.changes, tx);
      if (history) {
        const timed = fresh.flatMap((tx) => tx.changes.map((change) => ({ change, at: tx.commitTs })));
        for (const [entity, items] of byEntity(timed)) await history.apply(s, entity, temps.get(entity)!, items);
      }
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

  /** `fn` in one transaction; the history's temporary tables for `entities` are made before it (DDL may commit). */
  async #inTransaction<T>(
    entities: Iterable<string>,
    fn: (s: WarehouseSession, temps: Map<string, Temps>) => Promise<T>,
    options: { seen?: boolean } = {},
  ): Promise<T> {
    return this.wh.session(async (s) => {
      const temps = this.options.history ? await this.options.history.prepare(s, entities, options) : new Map<string, Temps>();
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

  async #insert(s: WarehouseSession, slot: string, changes: CdcChange[], tx: { commitLsn: Lsn; xid: number | null; commitTs: string }): Promise<void> {
    const d = this.wh.dialect;
    const json = (v: unknown) => (v === null ? 'null' : d.text(JSON.stringify(v)));
    const head = `${d.text(slot)}, ${tx.commitLsn}, `;
    const tail = `, ${tx.xid ?? 'null'}, ${d.timestamp(tx.commitTs)}, `;
    for (let i = 0; i < changes.length; i += ROWS_PER_INSERT) {
      const values = changes
        .slice(i, i + ROWS_PER_INSERT)
        .map(
          (c) =>
            `(${head}${c.seq}${tail}${d.text(c.entity)}, ${d.text(c.op)}, ${c.tenant === null ? 'null' : d.text(c.tenant)}, ${json(c.key)}, ${json(c.before)}, ${json(c.after)})`,
        );
      await s.query(`insert into ${this.wh.table(CHANGES)} (${COLUMNS.join(', ')}) values ${values.join(', ')}`);
    }
  }
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
