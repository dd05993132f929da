import { sql } from 'kysely';
import { CDC_LEDGER, CHANGES } from '../../cdc/change-log.ts';
import { isoOf } from '../../cdc/history.ts';
import { type Entities, type Entity, trackedFields } from '../../hub/entities.ts';
import type { HubDb } from '../../hub/db.ts';
import { Checksum, rowHash } from '../../transforms/row-hash.ts';
import type { Warehouse, WarehouseSession } from '../../warehouse/contract.ts';
import { type EntityReconciliation, FAIL_RATE, SAMPLES } from './reconcile.ts';
import { ledgerTenant } from './layout.ts';
import { historyTable } from './sql.ts';

/**
 * Proves the CDC-built history against the hub while both move. The argument:
 *
 * 1. On the hub, a REPEATABLE READ transaction takes its snapshot S with its first statement
 *    (`pg_current_snapshot()`, which also says which transactions S sees), and only then reads
 *    `pg_current_wal_insert_lsn()` = L. A transaction S sees had left the proc array, so its
 *    commit record was inserted, before S was taken: it ends at or before L. So S's
 *    transactions are exactly those with commit LSN < L whose xid S sees (below xmax, not in
 *    xip); one that committed before L but after S (still in flight when S was taken) is not.
 * 2. The warehouse is read once its ledger's applied LSN is ≥ L: it then holds every
 *    transaction of S. First its current rows; then, from the change log, the keys changed by a
 *    transaction S does not see, each with the earliest commit time of such a change (t_k).
 *    Reading the change log after the current rows means every later change that reached a
 *    current row read is listed (the sink writes both in one transaction).
 * 3. A key no such transaction touched: its current row is its state in S. A key one touched:
 *    its history version valid just before t_k is. Per key, S's transactions precede the
 *    others in commit order and time (a row lock is held until the writer has left the proc
 *    array, so a later writer of the same row commits after it and after any snapshot seeing
 *    the first), and history stamps each version with its transaction's commit time.
 *
 * Two changes of one key in the same microsecond, one in S and one not, would be one version:
 * the comparison reports that key. Keys are compared as text, values by the canonical row hash
 * history stores (`row_hash`), so mismatches name keys, not fields.
 */

export class CdcNotSetUpError extends Error {}
export class CatchUpTimeoutError extends Error {}

export interface CdcReconcileOptions {
  hub: HubDb;
  hubSchema: string;
  warehouse: Warehouse;
  entities: Entities;
  slot: string;
  /** How long to wait for the consumer to apply everything the hub snapshot holds. */
  catchUpMs: number;
  signal?: AbortSignal;
  onWait?: (state: { target: bigint; applied: bigint }) => void;
}

interface HubView {
  lsn: bigint;
  xmax: number;
  xip: Set<number>;
  /** entity → tenant label → key → row hash. */
  rows: Rows;
}

const XID_SPACE = 2 ** 32;
const xid32 = (x: string) => Number(BigInt(x) % BigInt(XID_SPACE));
/** True when 32-bit xid `a` is at or past `b`, modulo wraparound (both near the snapshot's horizon). */
const atOrPast = (a: number, b: number) => (a - b + XID_SPACE) % XID_SPACE < XID_SPACE / 2;
const keyOf = (values: unknown[]) => JSON.stringify(values.map((v) => (v === null || v === undefined ? null : String(v))));

function group<V>(top: Map<string, Map<string, V>>, entity: string, tenant: string, make: () => V): V {
  const byTenant = top.get(entity) ?? top.set(entity, new Map()).get(entity)!;
  return byTenant.get(tenant) ?? byTenant.set(tenant, make()).get(tenant)!;
}

/** The slot must exist on the hub and have its initial cut in the warehouse; else CDC was never set up here. */
export async function appliedLsnOrNull(opts: Pick<CdcReconcileOptions, 'hub' | 'warehouse' | 'slot'>): Promise<bigint | null> {
  const slots = await sql<{ n: string }>`select count(*)::text as n from pg_replication_slots where slot_name = ${opts.slot}`.execute(opts.hub);
  if (slots.rows[0]?.n === '0') throw new CdcNotSetUpError(`the hub has no replication slot ${opts.slot}`);
  return opts.warehouse.session(async (s) => {
    const tables = await s.query<{ n: unknown }>(
      `select count(*) as n from information_schema.tables where lower(table_name) = '${CDC_LEDGER}' and lower(table_schema) = ${s.dialect.text(opts.warehouse.schema.toLowerCase())}`,
    );
    if (!Number(tables[0]?.n)) throw new CdcNotSetUpError(`the warehouse has no ${CDC_LEDGER}`);
    const [row] = await s.query<{ applied_lsn: unknown }>(
      `select applied_lsn from ${opts.warehouse.table(CDC_LEDGER)} where slot = ${s.dialect.text(opts.slot)}`,
    );
    if (!row) throw new CdcNotSetUpError(`the warehouse's ${CDC_LEDGER} has no initial cut of slot ${opts.slot}`);
    return BigInt(String(row.applied_lsn));
  });
}

/** Step 1: the hub's rows in one snapshot, with the LSN and the transactions that snapshot sees. */
async function readHub(opts: CdcReconcileOptions): Promise<HubView> {
  return opts.hub
    .transaction()
    .setIsolationLevel('repeatable read')
    .execute(async (trx) => {
      const snap = await sql<{ snap: string }>`select pg_current_snapshot()::text as snap`.execute(trx);
      const lsn = await sql<{ lsn: string }>`select (pg_current_wal_insert_lsn() - '0/0')::text as lsn`.execute(trx);
      // The text form the WAL carries, which history's row hash is computed from.
      await sql`set local timezone = 'UTC'`.execute(trx);
      await sql`set local datestyle = 'ISO, YMD'`.execute(trx);
      await sql`set local extra_float_digits = 3`.execute(trx);
      const [, xmax, xip] = snap.rows[0]!.snap.split(':');
      const rows: Rows = new Map();
      for (const e of Object.values(opts.entities)) {
        const tracked = trackedFields(e);
        // A cast to text is each type's output function, except boolean's ('true'; the WAL carries 't').
        const text = (c: string) => (e.columns[c]?.type === 'boolean' ? `(case when "${c}" then 't' when not "${c}" then 'f' end)` : `"${c}"::text`);
        const cols = [e.tenantColumn ? `"${e.tenantColumn}"::text` : 'null', ...[...e.key, ...tracked].map(text)];
        const result = await sql<
          Record<string, string | null>
        >`select ${sql.raw(cols.map((c, i) => `${c} as c${i}`).join(', '))} from ${sql.table(`${opts.hubSchema}.${e.table}`)}`.execute(trx);
        for (const r of result.rows) {
          const v = Object.values(r);
          const tenant = ledgerTenant(e.tenantColumn ? (v[0] ?? null) : null);
          group(rows, e.name, tenant, () => new Map<string, string>()).set(keyOf(v.slice(1, 1 + e.key.length)), rowHash(v.slice(1 + e.key.length)));
        }
      }
      return { lsn: BigInt(lsn.rows[0]!.lsn), xmax: xid32(xmax!), xip: new Set((xip ?? '').split(',').filter(Boolean).map(xid32)), rows };
    });
}

/** Step 2's wait: until the warehouse holds every transaction the hub snapshot holds, or a clear error. */
async function waitForLedger(opts: CdcReconcileOptions, target: bigint): Promise<void> {
  const deadline = Date.now() + opts.catchUpMs;
  for (;;) {
    const applied = (await appliedLsnOrNull(opts)) ?? 0n;
    if (applied >= target) return;
    // An idle hub commits nothing more to apply: the slot's acknowledged position passing the
    // target says the same (the consumer acknowledges only what it applied, or, with nothing
    // in flight, the server's keepalive position).
    const slot = await sql<{
      lsn: string | null;
    }>`select (confirmed_flush_lsn - '0/0')::text as lsn from pg_replication_slots where slot_name = ${opts.slot}`.execute(opts.hub);
    const confirmed = slot.rows[0]?.lsn;
    if (confirmed && BigInt(confirmed) >= target) return;
    if (Date.now() > deadline) {
      throw new CatchUpTimeoutError(
        `the CDC consumer did not catch up with the hub within ${Math.round(opts.catchUpMs / 1000)} s (warehouse applied up to LSN ${applied}, the hub snapshot is at ${target}): ` +
          `is hubflow cdc run running? (hubflow cdc doctor shows the slot's lag)`,
      );
    }
    opts.onWait?.({ target, applied });
    if (opts.signal?.aborted) throw opts.signal.reason;
    await new Promise((r) => setTimeout(r, 500));
  }
}

type Rows = Map<string, Map<string, Map<string, string>>>;

function historySelect(s: WarehouseSession, wh: Warehouse, e: Entity): string {
  const d = s.dialect;
  const cols = [e.tenantColumn ? 'tenant_id' : null, ...e.key].map((c) => (c ? `cast(${d.id(c)} as ${d.type('text')})` : 'null'));
  return `select ${cols.map((c, i) => `${c} as c${i}`).join(', ')}, row_hash, is_deleted from ${wh.table(historyTable(e))}`;
}

/** History rows into `into` (live ones only), those of `only` when given: tenant → key → row hash. */
function put(into: Rows, e: Entity, rows: Record<string, unknown>[], only?: Set<string>): void {
  for (const r of rows) {
    const tenant = ledgerTenant(e.tenantColumn ? ((r.c0 as string | null) ?? null) : null);
    const key = keyOf(e.key.map((_, i) => r[`c${i + 1}`]));
    if (only && !only.has(`${tenant}|${key}`)) continue;
    const deleted = r.is_deleted === true || r.is_deleted === 't';
    if (!deleted) group(into, e.name, tenant, () => new Map<string, string>()).set(key, String(r.row_hash).trim());
  }
}

/** Step 3 for the keys that moved: each key's version valid just before its first change the hub snapshot does not see. */
async function readMoving(s: WarehouseSession, wh: Warehouse, e: Entity, into: Rows, moving: Map<string, string>): Promise<void> {
  const d = s.dialect;
  const text = d.type('text');
  const split = (id: string) => [id.slice(0, id.indexOf('|')), id.slice(id.indexOf('|') + 1)] as const;
  for (const id of moving.keys()) {
    const [tenant, key] = split(id);
    into.get(e.name)?.get(tenant)?.delete(key);
  }
  const entries = [...moving];
  for (let i = 0; i < entries.length; i += 200) {
    const chunk = entries.slice(i, i + 200);
    const ors = chunk.map(([id, at]) => {
      const [tenant, key] = split(id);
      const values = JSON.parse(key) as string[];
      const match = [
        ...(e.tenantColumn ? [`cast(tenant_id as ${text}) = ${d.text(tenant)}`] : []),
        ...e.key.map((k, j) => `cast(${d.id(k)} as ${text}) = ${d.text(values[j]!)}`),
      ];
      return `(${match.join(' and ')} and valid_from < ${d.timestamp(at)} and (valid_to is null or valid_to >= ${d.timestamp(at)}))`;
    });
    put(into, e, await s.query(`${historySelect(s, wh, e)} where ${ors.join(' or ')}`), new Set(chunk.map(([id]) => id)));
  }
}

/** The keys changed by transactions the hub snapshot does not see, per entity: `tenant|key` → earliest such commit (ISO). */
async function movingKeys(s: WarehouseSession, opts: CdcReconcileOptions, hub: HubView): Promise<Map<string, Map<string, string>>> {
  const d = s.dialect;
  const wh = opts.warehouse;
  // In SQL too, so only the changes since the snapshot are read: xids at or past xmax (mod 2^32), or in flight at it.
  const inFlight = hub.xip.size ? `xid in (${[...hub.xip].join(', ')}) or ` : '';
  const rows = await s.query<{ entity: string; tenant_id: string | null; key_row: string; commit_lsn: unknown; xid: unknown; commit_ts: string }>(
    `select entity, tenant_id, key_row, commit_lsn, xid, cast(commit_ts as ${d.type('text')}) as commit_ts from ${wh.table(CHANGES)}
     where slot = ${d.text(opts.slot)} and op <> 'snapshot'
       and (commit_lsn >= ${hub.lsn} or ${inFlight}mod(xid - ${hub.xmax} + ${XID_SPACE}, ${XID_SPACE}) < ${XID_SPACE / 2})`,
  );
  const out = new Map<string, Map<string, string>>();
  for (const r of rows) {
    const xid = r.xid === null ? null : Number(r.xid);
    const seen = BigInt(String(r.commit_lsn)) < hub.lsn && xid !== null && !hub.xip.has(xid) && !atOrPast(xid, hub.xmax);
    if (seen) continue;
    const e = opts.entities[r.entity];
    if (!e) continue;
    const keyRow = JSON.parse(r.key_row) as Record<string, string | null>;
    const key = keyOf(e.key.map((k) => keyRow[k] ?? null));
    const id = `${ledgerTenant(r.tenant_id)}|${key}`;
    const at = isoOf(r.commit_ts)!;
    const byKey = out.get(r.entity) ?? out.set(r.entity, new Map()).get(r.entity)!;
    const before = byKey.get(id);
    if (!before || at < before) byKey.set(id, at);
  }
  return out;
}

/** The reconciliation of every entity and tenant: the hub snapshot against history as of it. */
export async function reconcileCdc(opts: CdcReconcileOptions): Promise<{ lsn: bigint; moving: number; results: EntityReconciliation[] }> {
  await appliedLsnOrNull(opts);
  const hub = await readHub(opts);
  await waitForLedger(opts, hub.lsn);
  const target: Rows = new Map();
  const wh = opts.warehouse;
  let movingCount = 0;
  await wh.session(async (s) => {
    // Current rows first, the change log after (see step 2).
    for (const e of Object.values(opts.entities)) put(target, e, await s.query(`${historySelect(s, wh, e)} where is_current`));
    const moving = await movingKeys(s, opts, hub);
    for (const keys of moving.values()) movingCount += keys.size;
    for (const e of Object.values(opts.entities)) await readMoving(s, wh, e, target, moving.get(e.name) ?? new Map());
  });
  const results: EntityReconciliation[] = [];
  for (const e of Object.values(opts.entities)) {
    const tenants = new Set([...(hub.rows.get(e.name)?.keys() ?? []), ...(target.get(e.name)?.keys() ?? [])]);
    for (const tenant of [...tenants].sort()) {
      results.push(compare(e, tenant, hub.rows.get(e.name)?.get(tenant) ?? new Map(), target.get(e.name)?.get(tenant) ?? new Map()));
    }
  }
  return { lsn: hub.lsn, moving: movingCount, results };
}

function compare(e: Entity, tenant: string, source: Map<string, string>, current: Map<string, string>): EntityReconciliation {
  const src = new Checksum();
  const cur = new Checksum();
  const missingInTarget: string[] = [];
  const missingInSource: string[] = [];
  const differing: string[] = [];
  for (const [key, hash] of source) {
    src.add(hash);
    const other = current.get(key);
    if (other === undefined) missingInTarget.push(key);
    else if (other !== hash) differing.push(key);
  }
  for (const [key, hash] of current) {
    cur.add(hash);
    if (!source.has(key)) missingInSource.push(key);
  }
  const label = (k: string) => (JSON.parse(k) as (string | null)[]).join('/');
  const sample = (keys: string[]) => keys.sort().slice(0, SAMPLES).map(label);
  const bad = missingInTarget.length + missingInSource.length + differing.length;
  const mismatchRate = bad / Math.max(source.size, 1);
  const sumsAgree = src.sum === cur.sum && source.size === current.size;
  // Equal records with unequal sums would mean hashes that disagree with the values: as bad as a mismatch.
  const severity = bad > 0 || !sumsAgree ? 'critical' : 'none';
  return {
    entity: e.name,
    tenant,
    sourceCount: source.size,
    sourceSum: src.sum,
    rejected: 0,
    stagedCount: source.size,
    currentCount: current.size,
    currentSum: cur.sum,
    matched: source.size - missingInTarget.length - differing.length,
    mismatched: differing.length,
    missingInTarget: missingInTarget.length,
    missingInSource: missingInSource.length,
    mismatchRate,
    severity,
    status: mismatchRate > FAIL_RATE || (!bad && !sumsAgree) ? 'failed' : severity === 'critical' ? 'escalated' : 'ok',
    fields: differing.length
      ? [{ field: 'row_hash', fieldClass: 'operational', severity: 'critical', mismatched: differing.length, sampleKeys: sample(differing) }]
      : [],
    samples: { missingInTarget: sample(missingInTarget), missingInSource: sample(missingInSource) },
  };
}
