import type { Lsn } from './lsn.ts';

/**
 * What the stream hands on: committed transactions of the hub, in commit order, each change
 * named by entity, tenant and key, with its row before and after. Values are PostgreSQL's text
 * form of each column (in UTC, ISO dates), by hubflow's field names; null is SQL NULL.
 */
export type Row = Record<string, string | null>;

/** `snapshot` is a row of the initial cut: present when the slot was created, not a change. */
export type ChangeOp = 'insert' | 'update' | 'delete' | 'snapshot';

export interface CdcChange {
  entity: string;
  op: ChangeOp;
  /** The tenant column's value; null for global (reference) entities. */
  tenant: string | null;
  /** The key fields within the tenant. */
  key: Row;
  /** The full row a delete removed; null for the other operations. */
  before: Row | null;
  /** The full row after the change; null for delete. */
  after: Row | null;
  /** The row's own change time (the entity's updated-at column), as the server prints it: kept as data. */
  updatedAt: string | null;
  /** Order within the transaction (or within the initial cut). */
  seq: number;
}

export interface CdcTransaction {
  xid: number;
  /** Where the transaction's COMMIT record starts: the order of transactions. */
  commitLsn: Lsn;
  /** Where the COMMIT record ends: what the slot is acknowledged with once this transaction is applied. */
  endLsn: Lsn;
  /** The commit time, ISO-8601 UTC with microseconds: the versions' valid_from. */
  commitTs: string;
  changes: CdcChange[];
}

/** The initial cut: every captured row as of the slot's exported snapshot. */
export interface InitialCut {
  slot: string;
  /** The slot's consistent point: the stream holds exactly the transactions committed from here on. */
  consistentPoint: Lsn;
  /** A time taken inside the snapshot: every row of the cut was committed before it. */
  snapshotAt: string;
}

/**
 * Where captured changes are applied (a change log, the warehouse's SCD2 history). A sink keeps
 * its own ledger, the end LSN of the last transaction applied, written in the same transaction
 * as the changes: the stream resumes from it and skips what the server sends again, and the
 * slot is acknowledged only with a position the ledger already holds.
 */
export interface CdcSink {
  /** The end LSN of the last transaction applied for `slot` (the consistent point after the initial cut), or null before it. */
  appliedLsn(slot: string): Promise<Lsn | null>;
  /**
   * Applies the initial cut, batch by batch, and records its consistent point: all of it or none.
   * `tombstones`: keys the sink held live that the cut lacks, closed as deleted at the cut.
   */
  seed(cut: InitialCut, rows: AsyncIterable<CdcChange[]>): Promise<{ rows: number; tombstones?: number }>;
  /** Applies transactions in the order given and records the last one's end LSN, atomically and durably. */
  apply(slot: string, batch: CdcTransaction[]): Promise<void>;
  /**
   * Does ahead what `apply` of this very batch would compute before writing (nothing durable):
   * the stream calls it for the next batch while the one before it is applied, so the two overlap.
   */
  prepare?(slot: string, batch: CdcTransaction[]): void;
}
