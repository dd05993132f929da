import { randomBytes } from 'node:crypto';
import { runAll, type Warehouse, type WarehouseSession } from '../warehouse/contract.ts';
import { trackedFields, type Entities, type Entity } from '../hub/entities.ts';
import { canonicalEncoding, hashOfEncoding } from '../transforms/row-hash.ts';
import { type Column, insertRows } from './rows.ts';
import type { CdcChange } from './sink.ts';

/**
 * Captured changes into the warehouse's SCD2 history, as the history contract describes it to
 * analysts (README, "The history contract"): `<entity>_history` with the tenant, the key, every
 * tracked column, `valid_from`, `valid_to`, `is_current`, `is_deleted`, `row_hash`,
 * `source_updated_at`, `run_id`, `closed_by_run_id`. A version starts at its transaction's
 * commit time; a batch may hold several versions of one key, made in commit order. The tables
 * are the nightly history's own (its schema step creates them); every statement is spelled by
 * the warehouse's dialect.
 */

/** History rows written by the stream carry this run id: no DAG run made them. */
export const CDC_RUN_ID = 0;
const TENANT_FIELD = 'tenant_id';

/** One change and the instant its version starts. */
export interface Timed {
  change: CdcChange;
  at: string;
}

export interface Version {
  /** The key (the tenant, then the entity's key fields) in the canonical encoding: one string per key. */
  identity: string;
  /** The tracked values in the canonical encoding: what `rowHash` hashes. */
  tracked: string;
  validFrom: string;
  validTo: string | null;
  isCurrent: boolean;
  isDeleted: boolean;
  rowHash: string;
  updatedAt: string | null;
  /** The key's first version in the batch: the one that closes, or repeats, its current history row. */
  isFirst: boolean;
}

/** One entity's versions of a batch, as rows of its temporary table. */
export interface PlannedVersions {
  entity: string;
  /** Lines of COPY text, in the temporary table's column order. */
  rows: string[];
  /** The initial cut's instant, when these are rows of a cut. */
  cut?: string;
}

/** The temporary tables of one entity in one batch. */
export interface Temps {
  versions: string;
  /** Whether `versions` holds rows of an earlier batch (an initial cut applies many into one). */
  used?: boolean;
  /** Every key an initial cut holds, when it is to tombstone the keys it does not. */
  seen?: string;
}

/** A timestamptz as the server prints it in UTC ('2026-03-01 09:30:00.5+00') as ISO-8601 with microseconds. */
export function isoOf(text: string | null): string | null {
  if (text === null) return null;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2})(?:\.(\d{1,6}))?\+00$/.exec(text);
  if (!m) throw new Error(`not a UTC timestamp as PostgreSQL prints it: '${text}'`);
  return `${m[1]}T${m[2]}.${(m[3] ?? '').padEnd(6, '0')}Z`;
}

/**
 * The versions a batch makes: per key, one per instant that changed it (the state at commit:
 * changes undone inside one transaction make none), none where the content and deletion are
 * those of the version before, each closed by the next. A key's first version may repeat its
 * current history row: the warehouse drops it there (`HistoryApplier.apply`).
 */
export function planVersions(entity: Entity, timed: Timed[]): Version[] {
  const tracked = trackedFields(entity);
  const byKey = new Map<string, Version[]>();
  for (const { change: c, at } of timed) {
    const image = c.after ?? c.before;
    if (!image) continue;
    const encoded = canonicalEncoding(tracked.map((f) => image[f] ?? null));
    const version: Version = {
      identity: canonicalEncoding([...(entity.tenantColumn ? [c.tenant] : []), ...entity.key.map((f) => c.key[f] ?? null)]),
      tracked: encoded,
      validFrom: at,
      validTo: null,
      isCurrent: true,
      isDeleted: c.op === 'delete',
      rowHash: hashOfEncoding(encoded),
      updatedAt: isoOf(c.updatedAt),
      isFirst: false,
    };
    const versions = byKey.get(version.identity) ?? [];
    byKey.set(version.identity, versions);
    if (versions.at(-1)?.validFrom === at) versions.pop();
    const previous = versions.at(-1);
    if (previous && previous.rowHash === version.rowHash && previous.isDeleted === version.isDeleted) continue;
    versions.push(version);
  }
  const out: Version[] = [];
  for (const versions of byKey.values()) {
    versions.forEach((v, i) => {
      v.isFirst = i === 0;
      const next = versions[i + 1];
      if (next) Object.assign(v, { validTo: next.validFrom, isCurrent: false });
      out.push(v);
    });
  }
  return out;
}

export class HistoryApplier {
  constructor(
    private readonly wh: Warehouse,
    readonly entities: Entities,
  ) {}

  /** Temporary tables for the entities a batch touches: before BEGIN, since some warehouses commit on DDL. */
  async createTemps(s: WarehouseSession, names: Iterable<string>, options: { seen?: boolean } = {}): Promise<Map<string, Temps>> {
    const d = this.wh.dialect;
    const tag = randomBytes(4).toString('hex');
    const temps = new Map<string, Temps>();
    for (const name of names) {
      const e = this.#entity(name);
      const table = d.id(`cdc_v_${e.name}_${tag}`.slice(0, 63));
      const identity = this.#identity(e).map((f) => `${d.id(f)} ${d.type(f === TENANT_FIELD ? 'text' : e.columns[f]!.type)}`);
      const columns = [
        ...identity,
        ...trackedFields(e).map((f) => `${d.id(f)} ${d.type(e.columns[f]!.type)}`),
        `valid_from ${d.timestampType}`,
        `valid_to ${d.timestampType}`,
        'is_current boolean',
        'is_deleted boolean',
        'row_hash char(64)',
        `source_updated_at ${d.timestampType}`,
        'is_first boolean',
      ];
      await s.query(d.createTemp(table, columns.join(', ')));
      const seen = options.seen ? d.id(`cdc_s_${e.name}_${tag}`.slice(0, 63)) : undefined;
      if (seen) await s.query(d.createTemp(seen, identity.join(', ')));
      temps.set(name, { versions: table, ...(seen ? { seen } : {}) });
    }
    return temps;
  }

  async cleanup(s: WarehouseSession, temps: Map<string, Temps>): Promise<void> {
    for (const t of temps.values()) for (const table of [t.versions, t.seen ?? null]) if (table) await s.query(`drop table if exists ${table}`);
  }

  /**
   * One entity's changes as the rows of the versions they make, computed apart from the
   * warehouse (a stream plans the next batch while the one before it is written). With `cut`
   * (an initial cut's instant), a row starts at its own change time when that is not later than
   * the cut; `write` moves the rows of keys history already holds to the cut.
   */
  plan(name: string, timed: Timed[], cut?: string): PlannedVersions {
    const e = this.#entity(name);
    const at = cut
      ? (t: Timed) => {
          const own = isoOf(t.change.updatedAt);
          return own === null || own > cut ? cut : own;
        }
      : (t: Timed) => t.at;
    const bool = (b: boolean) => (b ? 't' : 'f');
    const stamp = (v: string | null) => v ?? '\\N';
    // Timestamps, booleans and hashes hold nothing COPY text escapes.
    const rows = planVersions(
      e,
      timed.map((t) => ({ change: t.change, at: at(t) })),
    ).map((v) =>
      [v.identity, v.tracked, v.validFrom, stamp(v.validTo), bool(v.isCurrent), bool(v.isDeleted), v.rowHash, stamp(v.updatedAt), bool(v.isFirst)].join('\t'),
    );
    return { entity: name, rows, ...(cut ? { cut } : {}) };
  }

  /** Applies one entity's changes in the caller's transaction; returns the versions staged. */
  async apply(s: WarehouseSession, name: string, temps: Temps, timed: Timed[], cut?: string): Promise<number> {
    return this.write(s, temps, this.plan(name, timed, cut));
  }

  /** Planned versions into history, in the caller's transaction; returns how many were staged. */
  async write(s: WarehouseSession, temps: Temps, planned: PlannedVersions): Promise<number> {
    const { rows, cut } = planned;
    if (!rows.length) return 0;
    const e = this.#entity(planned.entity);
    const d = this.wh.dialect;
    // Emptied by TRUNCATE: a temporary table is never vacuumed, and deleted rows would stay for every later scan.
    if (temps.used) await s.query(`truncate table ${temps.versions}`);
    temps.used = true;
    await insertRows(s, temps.versions, this.#stagedColumns(e), rows);
    const ids = this.#identity(e).map(d.id);
    const history = this.wh.table(`${e.name}_history`);
    const on = ids.map((c) => `h.${c} = t.${c}`).join(' and ');
    await runAll(s, this.wh, [
      ...(temps.seen ? [`insert into ${temps.seen} select ${ids.join(', ')} from ${temps.versions}`] : []),
      ...d.probeByKey([
        // A key history holds changes at the cut.
        ...(cut ? [`update ${temps.versions} t set valid_from = ${d.timestamp(cut)} from ${history} h where h.is_current and ${on}`] : []),
        // A first version that repeats the current row (content and deletion) makes nothing.
        `delete from ${temps.versions} t using ${history} h
         where t.is_first and h.is_current and ${on} and h.row_hash = t.row_hash and h.is_deleted = t.is_deleted`,
        ...this.#write(e, temps.versions),
      ]),
    ]);
    return rows.length;
  }

  #stagedColumns(e: Entity): Column[] {
    const text = (name: string): Column => ({ name, kind: 'text' });
    const stamp = (name: string): Column => ({ name, kind: 'timestamp' });
    const bool = (name: string): Column => ({ name, kind: 'boolean' });
    return [
      ...this.#identity(e).map(text),
      ...trackedFields(e).map(text),
      stamp('valid_from'),
      stamp('valid_to'),
      bool('is_current'),
      bool('is_deleted'),
      text('row_hash'),
      stamp('source_updated_at'),
      bool('is_first'),
    ];
  }

  /** The versions staged in `temp` into history: each key's current row closed by its first new version, then the versions added. */
  #write(e: Entity, temp: string): string[] {
    const d = this.wh.dialect;
    const ids = this.#identity(e).map(d.id);
    const tracked = trackedFields(e);
    const history = this.wh.table(`${e.name}_history`);
    const on = ids.map((c) => `h.${c} = t.${c}`).join(' and ');
    const columns = [...ids, ...tracked.map(d.id)];
    return [
      `update ${history} h set valid_to = t.valid_from, is_current = false, closed_by_run_id = ${CDC_RUN_ID}
       from (select ${ids.join(', ')}, min(valid_from) as valid_from from ${temp} group by ${ids.join(', ')}) t where h.is_current and ${on}`,
      `insert into ${history} (${columns.join(', ')}, valid_from, valid_to, is_current, is_deleted, row_hash, source_updated_at, run_id, closed_by_run_id)
       select ${columns.join(', ')}, valid_from, valid_to, is_current, is_deleted, row_hash, source_updated_at, ${CDC_RUN_ID}, null from ${temp}`,
    ];
  }

  /**
   * After a complete initial cut: every key history holds live that the cut does not is closed
   * by a tombstone at `at` (deleted while no slot was streaming, as a re-seed after a lost slot
   * finds). Returns how many.
   */
  async tombstoneUnseen(s: WarehouseSession, name: string, temps: Temps, at: string): Promise<number> {
    if (!temps.seen) throw new Error(`no record of the keys the cut held for ${name}: prepare it with { seen: true }`);
    const e = this.#entity(name);
    const d = this.wh.dialect;
    if (temps.used) await s.query(`truncate table ${temps.versions}`);
    temps.used = true;
    const ids = this.#identity(e).map(d.id);
    const tracked = trackedFields(e).map(d.id);
    const history = this.wh.table(`${e.name}_history`);
    await s.query(
      `insert into ${temps.versions} select ${[...ids, ...tracked].map((c) => `h.${c}`).join(', ')}, ${d.timestamp(at)}, null, true, true, h.row_hash, h.source_updated_at, true
       from ${history} h left join ${temps.seen} k on ${ids.map((c) => `k.${c} = h.${c}`).join(' and ')}
       where h.is_current and not h.is_deleted and k.${ids.at(-1)} is null`,
    );
    const [row] = await s.query<{ n: unknown }>(`select count(*) as n from ${temps.versions}`);
    const n = Number(row?.n ?? 0);
    if (n) await runAll(s, this.wh, d.probeByKey(this.#write(e, temps.versions)));
    return n;
  }

  #identity(e: Entity): string[] {
    return [...(e.tenantColumn ? [TENANT_FIELD] : []), ...e.key];
  }

  #entity(name: string): Entity {
    const e = this.entities[name];
    if (!e) throw new Error(`no entity '${name}' in the hub's entity configuration`);
    return e;
  }
}
