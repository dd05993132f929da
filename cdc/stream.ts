import { PgoutputPlugin, type Pgoutput } from 'pg-logical-replication';
import { PermanentError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { ident } from '../hub/sql-names.ts';
import { ChangeDecoder, commitTimestamp } from './decode.ts';
import { formatLsn, lsnOf, type Lsn } from './lsn.ts';
import { assertSlotUsable, openPlain, openReplication, slotState, SlotInvalidatedError, type ReplicationClient } from './replication.ts';
import type { CdcSink, CdcTransaction } from './sink.ts';
import type { CdcSource } from './source.ts';

/**
 * The stream consumer. It reads the slot with its own loop on pg's replication connection and
 * uses pg-logical-replication (pinned) only to parse pgoutput messages: that library's
 * acknowledgements lose data (its keepalive timer acknowledges what was received, not what was
 * applied, and it reports end_lsn + 1, which skips a transaction whose COMMIT starts exactly
 * there). Here the slot is told only the end LSN of the last transaction the sink has durably
 * applied, exactly, and, when everything received is applied and nothing is in flight, the
 * server's own keepalive position, so WAL written by other tables can be freed.
 */

export interface StreamOptions {
  source: CdcSource;
  sink: CdcSink;
  log: Logger;
  /** A batch is applied when it holds this many changes (default 5,000), or `batchDelayMs` after its first transaction. */
  batchChanges?: number;
  batchDelayMs?: number;
  /** How often the position is reported even when nothing changes (wal_sender_timeout is 60 s by default). */
  statusIntervalMs?: number;
  /** How often an idle hub is given a WAL heartbeat (a non-transactional logical message); 0: never. */
  heartbeatMs?: number;
  signal?: AbortSignal;
  /** Called after each batch the sink applied (tests, metrics). */
  onApplied?: (batch: CdcTransaction[], appliedLsn: Lsn) => void;
}

export interface StreamStats {
  transactions: number;
  changes: number;
  /** Transactions the server sent again that the ledger already held, skipped. */
  skipped: number;
  appliedLsn: string;
}

const PG_EPOCH_MS = 946_684_800_000n;
/**
 * A backlog is applied in batches of this many changes. Larger batches apply faster (10,000:
 * about 14% more changes/s), but each change in flight costs the consumer several KB of heap
 * before the collector reclaims it: at 5,000, a backlog's peak stays near 300 MB (281–336 MB
 * measured), at 10,000 it reaches 366–427 MB.
 */
const BATCH_CHANGES = 5_000;

/** A standby status update: written, flushed and applied are all `lsn`, exactly. */
function statusUpdate(lsn: Lsn, replyRequested = false): Buffer {
  const buf = Buffer.alloc(34);
  buf.write('r', 0);
  buf.writeBigUInt64BE(lsn, 1);
  buf.writeBigUInt64BE(lsn, 9);
  buf.writeBigUInt64BE(lsn, 17);
  buf.writeBigUInt64BE((BigInt(Date.now()) - PG_EPOCH_MS) * 1000n, 25);
  buf.writeUInt8(replyRequested ? 1 : 0, 33);
  return buf;
}

/** Streams until `signal` aborts (resolves) or something fails (rejects; the slot stays where the sink is). */
export async function streamChanges(opts: StreamOptions): Promise<StreamStats> {
  const { source, sink } = opts;
  const applied = await sink.appliedLsn(source.slot);
  if (applied === null) throw new PermanentError(`the sink holds no initial cut for slot ${source.slot}: run hubflow cdc setup first`);
  const replication = await openReplication(source.hubUrl, 'hubflow-cdc');
  try {
    await assertSlotUsable(replication.client, source.slot);
    return await new Consumer(opts, replication, applied).run();
  } catch (err) {
    throw await explainFailure(source, err);
  } finally {
    await replication.client.end().catch(() => undefined);
  }
}

/** A failure of a slot that turns out invalidated says so, whatever the server's words were. */
async function explainFailure(source: CdcSource, err: unknown): Promise<unknown> {
  if (err instanceof SlotInvalidatedError) return err;
  const client = await openPlain(source.hubUrl, 'hubflow-cdc').catch(() => null);
  if (!client) return err;
  try {
    const state = await slotState(client, source.slot);
    return state?.walStatus === 'lost' ? new SlotInvalidatedError(source.slot, { cause: err }) : err;
  } catch {
    return err;
  } finally {
    await client.end().catch(() => undefined);
  }
}

class Consumer {
  readonly #plugin: PgoutputPlugin;
  readonly #decoder: ChangeDecoder;
  #applied: Lsn;
  /** The last position reported to the server (never above what is applied, or the idle keepalive position). */
  #reported = 0n;
  #current: CdcTransaction | null = null;
  #pending: CdcTransaction[] = [];
  #pendingChanges = 0;
  #flushing: Promise<void> | null = null;
  /** The next batch, taken whole from `pending` and prepared while the one before it is applied. */
  #ahead: CdcTransaction[] | null = null;
  #timer: NodeJS.Timeout | null = null;
  #paused = false;
  #failed: ((err: unknown) => void) | null = null;
  #broken = false;
  readonly #stats = { transactions: 0, changes: 0, skipped: 0 };

  constructor(
    private readonly opts: StreamOptions,
    private readonly replication: ReplicationClient,
    applied: Lsn,
  ) {
    this.#applied = applied;
    this.#plugin = new PgoutputPlugin({ protoVersion: 1, publicationNames: [opts.source.publication] });
    this.#decoder = new ChangeDecoder(opts.source);
  }

  async run(): Promise<StreamStats> {
    const { source, log, signal } = this.opts;
    const { client, wire } = this.replication;
    const failure = new Promise<never>((_, reject) => {
      this.#failed = (err) => {
        this.#broken = true;
        reject(err);
      };
    });
    failure.catch(() => undefined);
    wire.on('copyData', ({ chunk }: { chunk: Buffer }) => {
      try {
        this.#onCopyData(chunk);
      } catch (err) {
        this.#failed?.(err);
      }
    });
    const status = setInterval(() => this.#report(this.#position()), this.opts.statusIntervalMs ?? 10_000);
    const heartbeat = await this.#startHeartbeat();
    const stopped = new Promise<void>((resolve) => {
      if (signal?.aborted) resolve();
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    log.info({ slot: source.slot, from: formatLsn(this.#applied) }, 'streaming changes');
    // The server starts at the later of this and the slot's confirmed position.
    const streaming = client.query(
      `START_REPLICATION SLOT ${ident(source.slot)} LOGICAL ${formatLsn(this.#applied)} (proto_version '1', publication_names ${client.escapeLiteral(source.publication)})`,
    );
    streaming.catch(() => undefined);
    try {
      await Promise.race([stopped, failure, streaming.then(() => Promise.reject(new Error('the server ended the replication stream')))]);
      // A clean stop applies what was received complete, so the next start has less to fetch again.
      await Promise.race([this.#drain(), failure]);
    } finally {
      clearInterval(status);
      await heartbeat();
      this.#clearTimer();
    }
    return { ...this.#stats, appliedLsn: formatLsn(this.#applied) };
  }

  #onCopyData(chunk: Buffer): void {
    if (chunk[0] === 0x77) {
      // XLogData: 'w', start LSN, end of WAL, send time (8 bytes each), then one pgoutput message.
      this.#onMessage(this.#plugin.parse(chunk.subarray(25)));
    } else if (chunk[0] === 0x6b) {
      // Primary keepalive: 'k', end of WAL, send time, reply requested.
      const walEnd = chunk.readBigUInt64BE(1);
      const idle = this.#idle();
      if (idle && walEnd > this.#applied) this.#idleAt = walEnd;
      if (chunk[17] === 1 || (idle && walEnd > this.#reported)) this.#report(this.#position(), true);
    }
  }

  /** The server's position last seen while everything received was applied. */
  #idleAt = 0n;

  #idle(): boolean {
    return this.#current === null && this.#pending.length === 0 && this.#flushing === null && this.#ahead === null;
  }

  /** What the slot may be told: applied transactions only, or the keepalive position when nothing was in flight. */
  #position(): Lsn {
    return this.#idle() && this.#idleAt > this.#applied ? this.#idleAt : this.#applied;
  }

  #report(lsn: Lsn, force = false): void {
    // After a failure nothing more is told: what was received may not be applied, and the stream is going down.
    if (this.#broken) return;
    if (!force && lsn === this.#reported) return;
    this.replication.wire.sendCopyFromChunk(statusUpdate(lsn));
    if (lsn > this.#reported) this.#reported = lsn;
  }

  #onMessage(msg: Pgoutput.Message): void {
    switch (msg.tag) {
      case 'begin':
        this.#idleAt = 0n;
        this.#current = { xid: msg.xid, commitLsn: lsnOf(msg.commitLsn), endLsn: 0n, commitTs: commitTimestamp(msg.commitTime as bigint), changes: [] };
        return;
      case 'relation':
        this.#decoder.relation(msg);
        return;
      case 'insert':
      case 'update':
      case 'delete': {
        const tx = this.#inTransaction(msg.tag);
        tx.changes.push(this.#decoder.change(msg, tx.changes.length));
        return;
      }
      case 'truncate':
        throw new PermanentError(
          `TRUNCATE of ${msg.relations.map((r) => `${r.schema}.${r.name}`).join(', ')} in transaction ${this.#inTransaction('truncate').xid}: ` +
            'the stream cannot tell which keys it removed; re-seed with hubflow cdc setup --reseed',
        );
      case 'commit':
        this.#commit(lsnOf(msg.commitEndLsn));
        return;
      default:
        // Type, origin and logical messages carry no row change.
        return;
    }
  }

  #inTransaction(what: string): CdcTransaction {
    if (!this.#current) throw new PermanentError(`a ${what} message arrived outside a transaction`);
    return this.#current;
  }

  #commit(endLsn: Lsn): void {
    const tx = this.#inTransaction('commit');
    this.#current = null;
    tx.endLsn = endLsn;
    // Sent again by the server (it restarts from its own confirmed position): the ledger has it.
    if (tx.commitLsn < this.#applied) {
      this.#stats.skipped++;
      return;
    }
    this.#pending.push(tx);
    this.#pendingChanges += tx.changes.length;
    const batch = this.opts.batchChanges ?? BATCH_CHANGES;
    if (this.#pendingChanges >= batch) {
      void this.#flush();
      this.#prepareAhead();
    } else this.#schedule(this.opts.batchDelayMs ?? 200);
    // Backpressure: a sink slower than the stream stops the socket rather than fill memory
    // (a batch being applied and the next one, prepared or arriving, are held).
    if ((this.#pendingChanges >= batch || this.#ahead) && this.#flushing && !this.#paused) {
      this.#paused = true;
      this.replication.wire.stream.pause();
    }
  }

  #schedule(delayMs: number): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.#flush();
    }, delayMs);
  }

  #clearTimer(): void {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #drain(): Promise<void> {
    while (this.#flushing || this.#pending.length || this.#ahead) await (this.#flushing ?? this.#flush());
  }

  /** Whole transactions from `pending` up to the batch size (at least one): what arrives later waits for the next batch. */
  #take(): CdcTransaction[] {
    const limit = this.opts.batchChanges ?? BATCH_CHANGES;
    let take = 0;
    let changes = 0;
    while (take < this.#pending.length && (take === 0 || changes + this.#pending[take]!.changes.length <= limit)) {
      changes += this.#pending[take]!.changes.length;
      take++;
    }
    this.#pendingChanges -= changes;
    return this.#pending.splice(0, take);
  }

  /** While a batch is applied, a full next batch is taken and prepared: the sink's own work overlaps the warehouse's. */
  #prepareAhead(): void {
    const { sink, source } = this.opts;
    if (!sink.prepare || this.#ahead || !this.#flushing || this.#broken || this.#pendingChanges < (this.opts.batchChanges ?? BATCH_CHANGES)) return;
    this.#ahead = this.#take();
    try {
      sink.prepare(source.slot, this.#ahead);
    } catch (err) {
      this.#failed?.(err);
    }
  }

  /** Applies what is pending, one batch at a time; then, and only then, acknowledges it. */
  #flush(): Promise<void> {
    if (this.#flushing) return this.#flushing;
    this.#clearTimer();
    const batch = this.#ahead ?? (this.#pending.length ? this.#take() : null);
    this.#ahead = null;
    if (!batch) return Promise.resolve();
    this.#flushing = (async () => {
      await this.opts.sink.apply(this.opts.source.slot, batch);
      const last = batch.at(-1)!;
      this.#applied = last.endLsn;
      this.#stats.transactions += batch.length;
      this.#stats.changes += batch.reduce((n, tx) => n + tx.changes.length, 0);
      this.opts.onApplied?.(batch, this.#applied);
    })();
    setImmediate(() => this.#prepareAhead());
    return this.#flushing.then(
      () => {
        this.#flushing = null;
        this.#report(this.#applied);
        if (this.#paused) {
          this.#paused = false;
          this.replication.wire.stream.resume();
        }
        if (this.#ahead || this.#pending.length) this.#schedule(0);
      },
      (err: unknown) => {
        this.#flushing = null;
        this.#failed?.(err);
      },
    );
  }

  /** A logical message every heartbeatMs on an ordinary connection: keepalives and slot positions move on an idle hub. */
  async #startHeartbeat(): Promise<() => Promise<void>> {
    const every = this.opts.heartbeatMs ?? 30_000;
    if (every <= 0) return async () => undefined;
    const client = await openPlain(this.opts.source.hubUrl, 'hubflow-cdc-heartbeat');
    let warned = false;
    const timer = setInterval(() => {
      client.query(`select pg_logical_emit_message(false, 'hubflow-heartbeat', now()::text)`).catch((err: unknown) => {
        if (!warned) this.opts.log.warn({ err }, 'cdc heartbeat failed (the role may lack EXECUTE on pg_logical_emit_message); the stream goes on');
        warned = true;
      });
    }, every);
    return async () => {
      clearInterval(timer);
      await client.end().catch(() => undefined);
    };
  }
}
