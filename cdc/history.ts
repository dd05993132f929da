import { randomBytes } from 'node:crypto';
import type { Warehouse, WarehouseSession } from '../warehouse/contract.ts';
import { trackedFields, type Entities, type Entity } from '../hub/entities.ts';
import { rowHash } from '../transforms/row-hash.ts';
import type { CdcChange, Row } from './sink.ts';

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
const KEYS_PER_LOOKUP = 500;

/** One change and the instant its version starts. */
export interface Timed {
  change: CdcChange;
  at: string;
}

export interface Version {
  tenant: string | null;
  key: Row;
  values: Row;
  validFrom: string;
  validTo: string | null;
  isCurrent: boolean;
  isDeleted: boolean;
  rowHash: string;
  updatedAt: string | null;
}

/** The temporary tables of one entity in one batch. */
export interface Temps {
  versions: string;
  keys: string;
  /** Every key an initial cut holds, when it is to tombstone the keys it does not. */
  seen?: string;
}

export interface CurrentVersion {
  rowHash: string;
  isDeleted: boolean;
}

const identity = (tenant: string | null, key: Row) => `${tenant ?? ''}\u0000${JSON.stringify(key)}`;

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
 * those of the version before (or of the current history row), each closed by the next.
 */
export function planVersions(entity: Entity, timed: Timed[], current: Map<string, CurrentVersion>): Version[] {
  const tracked = trackedFields(entity);
  const byKey = new Map<string, Version[]>();
  for (const { change: c, at } of timed) {
    const image = c.after ?? c.before;
    if (!image) continue;
    const values = Object.fromEntries(tracked.map((f) => [f, image[f] ?? null]));
    const version: Version = {
      tenant: c.tenant,
      key: c.key,
      values,
      validFrom: at,
      validTo: null,
      isCurrent: true,
      isDeleted: c.op === 'delete',
      rowHash: rowHash(tracked.map((f) => values[f] ?? null)),
      updatedAt: isoOf(c.updatedAt),
    };
    const id = identity(c.tenant, c.key);
    const versions = byKey.get(id) ?? [];
    byKey.set(id, versions);
    if (versions.at(-1)?.validFrom === at) versions.pop();
    const previous = versions.at(-1) ?? current.get(id);
    if (previous && previous.rowHash === version.rowHash && previous.isDeleted === version.isDeleted) continue;
    versions.push(version);
  }
  const out: Version[] = [];
  for (const versions of byKey.values()) {
    versions.forEach((v, i) => {
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
  async prepare(s: WarehouseSession, names: Iterable<string>, options: { seen?: boolean } = {}): Promise<Map<string, Temps>> {
    const d = this.wh.dialect;
    const tag = randomBytes(4).toString('hex');
    const temps = new Map<string, Temps>();
    for (const name of names) {
      const e = this.#entity(name);
      const table = d.id(`cdc_v_${e.name}_${tag}`.slice(0, 63));
      const keys = d.id(`cdc_k_${e.name}_${tag}`.slice(0, 63));
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
      ];
      await s.query(d.createTemp(table, columns.join(', ')));
      // The keys a batch touches, typed as history types them, numbered: how their current rows are found.
      await s.query(d.createTemp(keys, [`i ${d.type('integer')}`, ...identity].join(', ')));
      const seen = options.seen ? d.id(`cdc_s_${e.name}_${tag}`.slice(0, 63)) : undefined;
      if (seen) await s.query(d.createTemp(seen, identity.join(', ')));
      temps.set(name, { versions: table, keys, ...(seen ? { seen } : {}) });
    }
    return temps;
  }

  async cleanup(s: WarehouseSession, temps: Map<string, Temps>): Promise<void> {
    for (const t of temps.values()) for (const table of [t.versions, t.keys, t.seen ?? null]) if (table) await s.query(`drop table if exists ${table}`);
  }

  /** Applies one entity's changes in the caller's transaction. */
  async apply(
    s: WarehouseSession,
    name: string,
    temps: Temps,
    timed: Timed[],
    at: (c: Timed, current: CurrentVersion | undefined) => string = (c) => c.at,
  ): Promise<number> {
    const e = this.#entity(name);
    const temp = temps.versions;
    const current = await this.#current(s, e, temps, timed);
    const versions = planVersions(
      e,
      timed.map((t) => ({ change: t.change, at: at(t, current.get(identity(t.change.tenant, t.change.key))) })),
      current,
    );
    if (!versions.length) return 0;
    const d = this.wh.dialect;
    const tracked = trackedFields(e);
    const lit = (v: string | null) => (v === null ? 'null' : d.text(v));
    const ts = (v: string | null) => (v === null ? 'null' : d.timestamp(v));
    for (let i = 0; i < versions.length; i += KEYS_PER_LOOKUP) {
      const rows = versions
        .slice(i, i + KEYS_PER_LOOKUP)
        .map((v) =>
          [
            ...this.#identityValues(e, v.tenant, v.key).map(lit),
            ...tracked.map((f) => lit(v.values[f] ?? null)),
            ts(v.validFrom),
            ts(v.validTo),
            v.isCurrent ? 'true' : 'false',
            v.isDeleted ? 'true' : 'false',
            d.text(v.rowHash),
            ts(v.updatedAt),
          ].join(', '),
        );
      await s.query(`insert into ${temp} values (${rows.join('), (')})`);
    }
    await this.#write(s, e, temp);
    return versions.length;
  }

  /** The versions staged in `temp` into history: each key's current row closed by its first new version, then the versions added. */
  async #write(s: WarehouseSession, e: Entity, temp: string): Promise<void> {
    const d = this.wh.dialect;
    const ids = this.#identity(e).map(d.id);
    const tracked = trackedFields(e);
    const history = this.wh.table(`${e.name}_history`);
    const on = ids.map((c) => `h.${c} = t.${c}`).join(' and ');
    await s.query(
      `update ${history} h set valid_to = t.valid_from, is_current = false, closed_by_run_id = ${CDC_RUN_ID}
       from (select ${ids.join(', ')}, min(valid_from) as valid_from from ${temp} group by ${ids.join(', ')}) t where h.is_current and ${on}`,
    );
    const columns = [...ids, ...tracked.map(d.id)];
    await s.query(
      `insert into ${history} (${columns.join(', ')}, valid_from, valid_to, is_current, is_deleted, row_hash, source_updated_at, run_id, closed_by_run_id)
       select ${columns.join(', ')}, valid_from, valid_to, is_current, is_deleted, row_hash, source_updated_at, ${CDC_RUN_ID}, null from ${temp}`,
    );
    await s.query(`delete from ${temp}`);
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
    const ids = this.#identity(e).map(d.id);
    const tracked = trackedFields(e).map(d.id);
    const history = this.wh.table(`${e.name}_history`);
    await s.query(
      `insert into ${temps.versions} select ${[...ids, ...tracked].map((c) => `h.${c}`).join(', ')}, ${d.timestamp(at)}, null, true, true, h.row_hash, h.source_updated_at
       from ${history} h left join ${temps.seen} k on ${ids.map((c) => `k.${c} = h.${c}`).join(' and ')}
       where h.is_current and not h.is_deleted and k.${ids.at(-1)} is null`,
    );
    const [row] = await s.query<{ n: unknown }>(`select count(*) as n from ${temps.versions}`);
    const n = Number(row?.n ?? 0);
    if (n) await this.#write(s, e, temps.versions);
    return n;
  }

  /** The current history row of each key the batch touches. */
  async #current(s: WarehouseSession, e: Entity, temps: Temps, timed: Timed[]): Promise<Map<string, CurrentVersion>> {
    const keysTable = temps.keys;
    const d = this.wh.dialect;
    const ids = this.#identity(e).map(d.id);
    const keys = new Map<string, { tenant: string | null; key: Row }>();
    for (const { change } of timed) keys.set(identity(change.tenant, change.key), { tenant: change.tenant, key: change.key });
    const all = [...keys.entries()];
    for (let i = 0; i < all.length; i += KEYS_PER_LOOKUP) {
      const rows = all.slice(i, i + KEYS_PER_LOOKUP).map(
        ([, k], j) =>
          `(${i + j}, ${this.#identityValues(e, k.tenant, k.key)
            .map((v) => (v === null ? 'null' : d.text(v)))
            .join(', ')})`,
      );
      await s.query(`insert into ${keysTable} (i, ${ids.join(', ')}) values ${rows.join(', ')}`);
    }
    // Without statistics the planner takes a few keys for many and scans the whole history.
    for (const statement of d.analyze(keysTable)) await s.query(statement);
    const found = await s.query<{ i: unknown; row_hash: string; is_deleted: unknown }>(
      `select k.i, h.row_hash, h.is_deleted from ${keysTable} k join ${this.wh.table(`${e.name}_history`)} h on ${ids.map((c) => `h.${c} = k.${c}`).join(' and ')}
       where h.is_current`,
    );
    if (temps.seen) await s.query(`insert into ${temps.seen} select ${ids.join(', ')} from ${keysTable}`);
    await s.query(`delete from ${keysTable}`);
    const out = new Map<string, CurrentVersion>();
    for (const r of found) out.set(all[Number(r.i)]![0], { rowHash: String(r.row_hash).trim(), isDeleted: r.is_deleted === true || r.is_deleted === 't' });
    return out;
  }

  #identity(e: Entity): string[] {
    return [...(e.tenantColumn ? [TENANT_FIELD] : []), ...e.key];
  }

  #identityValues(e: Entity, tenant: string | null, key: Row): (string | null)[] {
    return [...(e.tenantColumn ? [tenant] : []), ...e.key.map((f) => key[f] ?? null)];
  }

  #entity(name: string): Entity {
    const e = this.entities[name];
    if (!e) throw new Error(`no entity '${name}' in the hub's entity configuration`);
    return e;
  }
}
