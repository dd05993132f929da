import pg from 'pg';
import { HUB_ENTITIES } from '../../hub/entities.ts';
import type { Warehouse } from '../../warehouse/contract.ts';
import { execSql } from './private-pg.ts';
import { HUB_SCHEMA } from './support.ts';

/**
 * The hub's own change record and a concurrent writer. Triggers log every row change of the
 * demo hub's tables with its transaction id, in statement order, into audit.changes (not
 * published), so what CDC delivered can be compared with what the hub committed.
 */

export async function installAudit(url: string): Promise<void> {
  await execSql(
    url,
    'create schema audit',
    'create table audit.changes (id bigserial primary key, xid bigint not null, entity text not null, op text not null, key_value text not null)',
    `create function audit.log() returns trigger language plpgsql as $$
     declare r record; begin
       if tg_op = 'DELETE' then r := old; else r := new; end if;
       insert into audit.changes (xid, entity, op, key_value)
       values (pg_current_xact_id()::text::bigint % 4294967296, tg_table_name, lower(tg_op), to_jsonb(r) ->> tg_argv[0]);
       return null; end $$`,
    ...Object.values(HUB_ENTITIES).map(
      (e) =>
        `create trigger audit after insert or update or delete on ${HUB_SCHEMA}.${e.table} for each row execute function audit.log('${e.key[e.key.length - 1]}')`,
    ),
  );
}

/** New keys stay unique across the writers a test starts one after another. */
let serial = 0;

export interface Writer {
  stop(): Promise<{ transactions: number }>;
}

/**
 * One connection per tenant, each committing small transactions of inserts, updates (some
 * A→B→A within one transaction) and deletes of workers and contracts, as fast as it can.
 */
export async function startWriters(url: string, pauseMs = 5): Promise<Writer> {
  const [{ rows }] = (await execSql(url, `select distinct tenant_id from ${HUB_SCHEMA}.workers order by 1`)) as [pg.QueryResult<{ tenant_id: string }>];
  let running = true;
  let transactions = 0;
  const loops = rows.map(async ({ tenant_id: tenant }) => {
    const client = new pg.Client({ connectionString: url });
    await client.connect();
    const pick = `(select worker_id from ${HUB_SCHEMA}.workers where tenant_id = $1 order by random() limit 1)`;
    try {
      while (running) {
        await client.query('begin');
        const ops = 1 + Math.floor(Math.random() * 6);
        for (let i = 0; i < ops; i++) {
          const r = Math.random();
          const n = `${tenant}-${serial++}`;
          if (r < 0.25) {
            await client.query(
              `insert into ${HUB_SCHEMA}.workers select * from jsonb_populate_record(null::${HUB_SCHEMA}.workers,
                 (select to_jsonb(w) || jsonb_build_object('worker_id', 'N' || $2::text) from ${HUB_SCHEMA}.workers w where tenant_id = $1 limit 1))`,
              [tenant, n],
            );
          } else if (r < 0.35) {
            await client.query(`delete from ${HUB_SCHEMA}.workers where tenant_id = $1 and worker_id = ${pick}`, [tenant]);
          } else if (r < 0.45) {
            // A→B→A inside one transaction: two changes, the row as it was.
            await client.query(`update ${HUB_SCHEMA}.workers set city = city || '~' where tenant_id = $1 and worker_id = ${pick}`, [tenant]);
            await client.query(`update ${HUB_SCHEMA}.workers set city = rtrim(city, '~') where tenant_id = $1 and city like '%~'`, [tenant]);
          } else if (r < 0.55) {
            await client.query(
              `update ${HUB_SCHEMA}.contracts set salary = salary + 1, updated_at = now() where tenant_id = $1 and contract_id = (select contract_id from ${HUB_SCHEMA}.contracts where tenant_id = $1 order by random() limit 1)`,
              [tenant],
            );
          } else {
            await client.query(`update ${HUB_SCHEMA}.workers set city = $2, updated_at = now() where tenant_id = $1 and worker_id = ${pick}`, [
              tenant,
              `City ${n}`,
            ]);
          }
        }
        await client.query('commit');
        transactions++;
        if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
      }
    } finally {
      await client.end();
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { transactions };
    },
  };
}

export interface SinkChange {
  commit_lsn: string;
  seq: number;
  xid: string | null;
  entity: string;
  op: string;
  tenant_id: string | null;
  key_row: string;
  after_row: string | null;
}

export async function sinkChanges(wh: Warehouse): Promise<SinkChange[]> {
  return wh.session((s) =>
    s.query<SinkChange>(
      `select commit_lsn::text, seq, xid::text, entity, op, tenant_id, key_row, after_row from ${wh.table('cdc_changes')} order by commit_lsn, seq`,
    ),
  );
}

/** The hub's rows as the cut reads them (text values by field), keyed by entity, tenant and key. */
export async function hubRows(url: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  const client = new pg.Client({
    connectionString: url,
    options: '-c timezone=UTC -c datestyle=ISO,YMD -c extra_float_digits=3',
    types: { getTypeParser: () => (v: string) => v },
  });
  await client.connect();
  try {
    for (const e of Object.values(HUB_ENTITIES)) {
      const fields = Object.keys(e.columns);
      const { rows } = await client.query(`select ${e.tenantColumn ?? 'null'} as t, ${fields.join(', ')} from ${HUB_SCHEMA}.${e.table}`);
      for (const r of rows) {
        const { t, ...row } = r as Record<string, string | null>;
        out.set(identity(e.name, t ?? null, JSON.stringify(Object.fromEntries(e.key.map((k) => [k, row[k] ?? null])))), JSON.stringify(row));
      }
    }
  } finally {
    await client.end();
  }
  return out;
}

const identity = (entity: string, tenant: string | null, key: string) => `${entity}|${tenant ?? ''}|${key}`;

/**
 * Replays the sink's record from empty: the cut's rows, then each change in commit order. Every
 * insert must meet no row, every update and delete must find its row: an overlap between cut and
 * stream, or a doubled insert, shows up as a problem here (a lost or doubled transaction shows
 * in the comparison with the hub's audit record, `streamedTransactions`).
 */
export function replay(changes: SinkChange[]): { state: Map<string, string>; problems: string[] } {
  const state = new Map<string, string>();
  const problems: string[] = [];
  for (const c of changes) {
    const id = identity(c.entity, c.tenant_id, c.key_row);
    const current = state.get(id);
    if (c.op === 'snapshot' || c.op === 'insert') {
      if (current !== undefined) problems.push(`${c.op} of ${id} at ${c.commit_lsn}: the row is already there`);
    } else if (current === undefined) {
      problems.push(`${c.op} of ${id} at ${c.commit_lsn}: the replica holds no such row`);
    }
    if (c.op === 'delete') state.delete(id);
    else state.set(id, c.after_row!);
  }
  return { state, problems };
}

/** Every audited transaction after the cut: its changes by (entity, op, key) in order, by xid. */
export async function auditedTransactions(url: string, afterId = 0): Promise<Map<string, string[]>> {
  const [{ rows }] = (await execSql(url, `select xid::text, entity, op, key_value from audit.changes where id > ${afterId} order by id`)) as [
    pg.QueryResult<{ xid: string; entity: string; op: string; key_value: string }>,
  ];
  const out = new Map<string, string[]>();
  for (const r of rows) out.set(r.xid, [...(out.get(r.xid) ?? []), `${r.entity} ${r.op} ${r.key_value}`]);
  return out;
}

/** The sink's streamed transactions the same way; a transaction seen twice is listed twice. */
export function streamedTransactions(changes: SinkChange[]): { byXid: Map<string, string[]>; doubled: string[] } {
  const byXid = new Map<string, string[]>();
  const lsnOf = new Map<string, string>();
  const doubled: string[] = [];
  const positions = new Set<string>();
  for (const c of changes) {
    if (c.op === 'snapshot' || c.xid === null) continue;
    const position = `${c.commit_lsn}:${c.seq}`;
    if (positions.has(position)) doubled.push(c.xid);
    positions.add(position);
    const seen = lsnOf.get(c.xid);
    if (seen !== undefined && seen !== c.commit_lsn) doubled.push(c.xid);
    lsnOf.set(c.xid, c.commit_lsn);
    const key = (JSON.parse(c.key_row) as Record<string, string>) ?? {};
    byXid.set(c.xid, [...(byXid.get(c.xid) ?? []), `${c.entity} ${c.op} ${Object.values(key).at(-1)}`]);
  }
  return { byXid, doubled };
}

/** History rows live at `at` (or the current ones), as text by field, keyed as the replay keys them. */
export async function historyAsOf(url: string, at: string | null): Promise<Map<string, string>> {
  const client = new pg.Client({
    connectionString: url,
    options: '-c timezone=UTC -c datestyle=ISO,YMD',
    types: { getTypeParser: () => (v: string) => v },
  });
  await client.connect();
  const out = new Map<string, string>();
  try {
    for (const e of Object.values(HUB_ENTITIES)) {
      const fields = Object.keys(e.columns);
      const live = at === null ? 'is_current' : `valid_from <= '${at}' and (valid_to is null or valid_to > '${at}')`;
      const { rows } = await client.query(
        `select ${e.tenantColumn ? 'tenant_id' : 'null'} as t, ${fields.join(', ')} from wh.${e.name}_history where ${live} and not is_deleted`,
      );
      for (const r of rows) {
        const { t, ...row } = r as Record<string, string | null>;
        out.set(`${e.name}|${t ?? ''}|${JSON.stringify(Object.fromEntries(e.key.map((k) => [k, row[k] ?? null])))}`, JSON.stringify(row));
      }
    }
  } finally {
    await client.end();
  }
  return out;
}

/**
 * History as of sampled commit boundaries, each against the replay of the change log up to that
 * commit: the keys whose state differs, by instant (none when history is right). Commits that
 * share a microsecond are skipped: history keeps only their sum.
 */
export async function asOfDifferences(wh: Warehouse, url: string, changes: SinkChange[], samples = 12): Promise<string[]> {
  const commits = [...new Set(changes.filter((c) => c.op !== 'snapshot').map((c) => c.commit_lsn))];
  const times = await wh.session((s) =>
    s.query<{ commit_lsn: string; at: string }>(
      `select distinct commit_lsn::text, to_char(commit_ts at time zone 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"') as at from ${wh.table('cdc_changes')} where op <> 'snapshot'`,
    ),
  );
  const atOf = new Map(times.map((t) => [t.commit_lsn, t.at]));
  const shared = new Set(times.map((t) => t.at).filter((at, i, all) => all.indexOf(at) !== i));
  const out: string[] = [];
  for (let i = 0; i < commits.length; i += Math.max(1, Math.ceil(commits.length / samples))) {
    const at = atOf.get(commits[i]!)!;
    if (shared.has(at)) continue;
    const expected = replay(changes.filter((c) => c.op === 'snapshot' || BigInt(c.commit_lsn) <= BigInt(commits[i]!))).state;
    const actual = await historyAsOf(url, at);
    for (const key of new Set([...expected.keys(), ...actual.keys()])) if (expected.get(key) !== actual.get(key)) out.push(`${at} ${key}`);
  }
  return out;
}
