import type pg from 'pg';
import { HubflowError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { columnOf, type Entity } from '../hub/entities.ts';
import { ident } from '../hub/sql-names.ts';
import { formatLsn, parseLsn, type Lsn } from './lsn.ts';
import { openPlain, openReplication, slotState } from './replication.ts';
import type { CdcChange, CdcSink, Row } from './sink.ts';
import { capturedTables, type CdcSource } from './source.ts';

/**
 * `hubflow cdc setup`: the publication, the slot, and the initial cut that meets the stream with
 * no gap and no overlap. The slot is created on a replication connection with an exported
 * snapshot, and the cut is read in a transaction that imports that snapshot: it holds exactly
 * the transactions committed before the slot's consistent point, and the slot streams exactly
 * those committed after. (Creating the slot and then reading, or reading and then creating it,
 * overlaps or loses transactions under concurrent writes.)
 */

export interface SetupResult {
  publication: 'created' | 'extended' | 'unchanged';
  slot: string;
  consistentPoint: string;
  snapshotAt: string;
  rows: number;
  /** Keys live in history that the cut lacks (deleted while no slot streamed), closed at the cut. */
  tombstones: number;
  seconds: number;
}

const FETCH_ROWS = 5_000;

export async function setupCdc(source: CdcSource, sink: CdcSink, options: { reseed?: boolean; log: Logger }): Promise<SetupResult> {
  const started = performance.now();
  const plain = await openPlain(source.hubUrl, 'hubflow-cdc-setup');
  try {
    const publication = await ensurePublication(plain, source);
    await makeRoomForSlot(plain, source, sink, options);
    const replication = await openReplication(source.hubUrl, 'hubflow-cdc-setup');
    try {
      const { rows } = await replication.client.query<{ consistent_point: string; snapshot_name: string }>(
        `CREATE_REPLICATION_SLOT ${ident(source.slot)} LOGICAL pgoutput (SNAPSHOT 'export')`,
      );
      const created = rows[0]!;
      const consistentPoint = parseLsn(created.consistent_point);
      options.log.info({ slot: source.slot, consistentPoint: created.consistent_point }, 'created the replication slot');
      // The exported snapshot lives while the replication connection stays open and idle.
      const reader = await openPlain(source.hubUrl, 'hubflow-cdc-setup', { serverText: true });
      const cut = await readCut(reader, source, sink, created.snapshot_name, consistentPoint).finally(() => reader.end().catch(() => undefined));
      return { publication, slot: source.slot, consistentPoint: created.consistent_point, ...cut, seconds: (performance.now() - started) / 1000 };
    } finally {
      await replication.client.end().catch(() => undefined);
    }
  } finally {
    await plain.end().catch(() => undefined);
  }
}

async function ensurePublication(client: pg.Client, source: CdcSource): Promise<SetupResult['publication']> {
  const tables = capturedTables(source);
  const { rows: pub } = await client.query('select 1 from pg_publication where pubname = $1', [source.publication]);
  if (!pub.length) {
    await client.query(`create publication ${ident(source.publication)} for table ${tables.map((t) => t.qualified).join(', ')}`);
    return 'created';
  }
  const { rows } = await client.query<{ tablename: string }>('select tablename from pg_publication_tables where pubname = $1 and schemaname = $2', [
    source.publication,
    source.schema,
  ]);
  const covered = new Set(rows.map((r) => r.tablename));
  const missing = tables.filter((t) => !covered.has(t.entity.table));
  if (!missing.length) return 'unchanged';
  await client.query(`alter publication ${ident(source.publication)} add table ${missing.map((t) => t.qualified).join(', ')}`);
  return 'extended';
}

/**
 * A slot already there is kept unless asked to re-seed: dropping it drops whatever it holds.
 * The exception is a slot whose initial cut never reached the sink (a setup that died half-way):
 * nothing was read from it, so it is made again.
 */
async function makeRoomForSlot(client: pg.Client, source: CdcSource, sink: CdcSink, options: { reseed?: boolean; log: Logger }): Promise<void> {
  const state = await slotState(client, source.slot);
  if (!state) return;
  const applied = await sink.appliedLsn(source.slot);
  if (applied !== null && !options.reseed) {
    throw new HubflowError(
      `replication slot ${source.slot} exists and its initial cut was applied (up to ${formatLsn(applied)}): CDC is set up; ` +
        'run hubflow cdc run, or hubflow cdc setup --reseed to drop the slot and take a new initial cut',
    );
  }
  if (state.active) throw new HubflowError(`replication slot ${source.slot} is in use by a running consumer; stop it first`);
  await client.query('select pg_drop_replication_slot($1)', [source.slot]);
  options.log.warn({ slot: source.slot, reseed: Boolean(options.reseed) }, 'dropped the replication slot to create it again with a new initial cut');
}

async function readCut(
  client: pg.Client,
  source: CdcSource,
  sink: CdcSink,
  snapshot: string,
  consistentPoint: Lsn,
): Promise<{ snapshotAt: string; rows: number; tombstones: number }> {
  // SET TRANSACTION SNAPSHOT must come before the transaction's first query.
  await client.query('begin isolation level repeatable read read only');
  try {
    await client.query(`set transaction snapshot ${client.escapeLiteral(snapshot)}`);
    const { rows } = await client.query<{ at: string }>(`select to_char(clock_timestamp() at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at`);
    const snapshotAt = rows[0]!.at;
    const { rows: count, tombstones = 0 } = await sink.seed({ slot: source.slot, consistentPoint, snapshotAt }, cutRows(client, source));
    await client.query('commit');
    return { snapshotAt, rows: count, tombstones };
  } catch (err) {
    await client.query('rollback').catch(() => undefined);
    throw err;
  }
}

/** Every captured row of the snapshot, entity by entity, a batch at a time through a cursor. */
async function* cutRows(client: pg.Client, source: CdcSource): AsyncGenerator<CdcChange[]> {
  let seq = 0;
  for (const { entity, qualified } of capturedTables(source)) {
    const fields = Object.keys(entity.columns);
    const tenant = entity.tenantColumn ? ident(entity.tenantColumn) : 'null';
    const columns = fields.map((f) => `${ident(columnOf(entity, f))} as ${ident(f)}`);
    await client.query(
      `declare hubflow_cut no scroll cursor for select ${tenant} as hubflow_tenant, ${ident(entity.updatedAtColumn)} as hubflow_updated_at, ${columns.join(', ')} from ${qualified}`,
    );
    for (;;) {
      const { rows } = await client.query<CutRow>(`fetch ${FETCH_ROWS} from hubflow_cut`);
      if (!rows.length) break;
      yield rows.map((r) => snapshotChange(entity, r, seq++));
    }
    await client.query('close hubflow_cut');
  }
}

type CutRow = Row & { hubflow_tenant: string | null; hubflow_updated_at: string | null };

function snapshotChange(entity: Entity, r: CutRow, seq: number): CdcChange {
  const { hubflow_tenant: tenant, hubflow_updated_at: updatedAt, ...after } = r;
  return {
    entity: entity.name,
    op: 'snapshot',
    tenant,
    key: Object.fromEntries(entity.key.map((f) => [f, after[f] ?? null])),
    before: null,
    after,
    updatedAt,
    seq,
  };
}
