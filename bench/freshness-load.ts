import pg from 'pg';

/**
 * The freshness bench's hub writers: a steady stream of small transactions (inserts, updates and
 * deletes of workers across tenants) at a fixed rate of changes per second, and a burst of large
 * update transactions that builds a backlog for the throughput figure.
 */

const HUB = 'hub';
/** Share of changes by kind; the rest are updates. */
const INSERT_SHARE = 0.2;
const DELETE_SHARE = 0.1;
const CONNECTIONS = 4;
const TICK_MS = 50;

interface Key {
  tenant: string;
  id: string;
}

/** A sample of existing workers to update, delete and copy from (a full list of 1M keys would be the bench's memory, not the consumer's). */
async function sampleKeys(client: pg.Client, n: number): Promise<Key[]> {
  const { rows } = await client.query<{ tenant_id: string; worker_id: string }>(
    `select tenant_id, worker_id from ${HUB}.workers tablesample system (2) limit ${n}`,
  );
  return rows.map((r) => ({ tenant: r.tenant_id, id: r.worker_id }));
}

export interface SteadyLoad {
  stop(): Promise<{ transactions: number; changes: number; inserts: number; updates: number; deletes: number; seconds: number }>;
}

/**
 * `rate` changes per second, in transactions of 1–4 changes, on CONNECTIONS connections. Each tick
 * a connection commits the transactions it is owed; when the hub falls behind, the debt is paid
 * as fast as it can be.
 */
export async function startSteadyLoad(url: string, rate: number): Promise<SteadyLoad> {
  const setup = new pg.Client({ connectionString: url });
  await setup.connect();
  const keys = await sampleKeys(setup, 20_000).finally(() => setup.end());
  if (!keys.length) throw new Error('the hub has no workers to change');
  const counts = { transactions: 0, changes: 0, inserts: 0, updates: 0, deletes: 0 };
  const started = performance.now();
  let running = true;
  let serial = 0;
  const pick = () => keys[Math.floor(Math.random() * keys.length)]!;
  const loops = Array.from({ length: CONNECTIONS }, async (_, c) => {
    const client = new pg.Client({ connectionString: url, application_name: `freshness-load-${c}` });
    await client.connect();
    let done = 0;
    try {
      while (running) {
        const owed = Math.floor(((performance.now() - started) / 1000) * (rate / CONNECTIONS)) - done;
        if (owed <= 0) {
          await new Promise((r) => setTimeout(r, TICK_MS));
          continue;
        }
        const ops = Math.min(owed, 1 + Math.floor(Math.random() * 4));
        await client.query('begin');
        for (let i = 0; i < ops; i++) {
          const r = Math.random();
          const k = pick();
          if (r < INSERT_SHARE) {
            const id = `F${c}-${serial++}`;
            // A copy of a sampled worker under a new id (none when another connection just deleted it).
            const n = await client.query(
              `insert into ${HUB}.workers select (jsonb_populate_record(null::${HUB}.workers,
                 to_jsonb(w) || jsonb_build_object('worker_id', $3::text, 'updated_at', now()))).* from ${HUB}.workers w where tenant_id = $1 and worker_id = $2`,
              [k.tenant, k.id, id],
            );
            keys.push({ tenant: k.tenant, id });
            if (n.rowCount) counts.inserts++;
          } else if (r < INSERT_SHARE + DELETE_SHARE) {
            const n = await client.query(`delete from ${HUB}.workers where tenant_id = $1 and worker_id = $2`, [k.tenant, k.id]);
            keys.splice(keys.indexOf(k), 1);
            if (n.rowCount) counts.deletes++;
          } else {
            const n = await client.query(`update ${HUB}.workers set city = $3, updated_at = now() where tenant_id = $1 and worker_id = $2`, [
              k.tenant,
              k.id,
              `Town ${serial++}`,
            ]);
            if (n.rowCount) counts.updates++;
          }
        }
        await client.query('commit');
        done += ops;
        counts.transactions++;
        counts.changes = counts.inserts + counts.updates + counts.deletes;
      }
    } finally {
      await client.end();
    }
  });
  return {
    async stop() {
      running = false;
      await Promise.all(loops);
      return { ...counts, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) };
    },
  };
}

/** `changes` worker updates in transactions of `perTransaction`, as fast as the hub takes them: the backlog a stopped consumer finds. */
export async function writeBacklog(url: string, changes: number, perTransaction = 1_000): Promise<{ changes: number; transactions: number; seconds: number }> {
  const client = new pg.Client({ connectionString: url, application_name: 'freshness-backlog' });
  await client.connect();
  const started = performance.now();
  let written = 0;
  let transactions = 0;
  try {
    const { rows } = await client.query<{ n: string }>(`select count(*)::text as n from ${HUB}.workers`);
    // Each transaction updates a random sample of about perTransaction rows.
    const percent = Math.min(100, (perTransaction / Math.max(Number(rows[0]!.n), 1)) * 100);
    while (written < changes) {
      const r = await client.query(
        `update ${HUB}.workers w set city = w.city || '.', updated_at = now()
         from (select tenant_id, worker_id from ${HUB}.workers tablesample bernoulli (${percent}) limit ${perTransaction}) s
         where w.tenant_id = s.tenant_id and w.worker_id = s.worker_id`,
      );
      written += r.rowCount ?? 0;
      transactions++;
    }
  } finally {
    await client.end();
  }
  return { changes: written, transactions, seconds: Number(((performance.now() - started) / 1000).toFixed(1)) };
}
