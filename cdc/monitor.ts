import type pg from 'pg';
import { Gauge, type Registry } from 'prom-client';
import type { Logger } from '../core/log.ts';
import { openPlain } from './replication.ts';

/**
 * How far the hub's logical slots are behind: the bytes of WAL written since the consumer's last
 * acknowledgement (lag) and since the oldest position the slot still holds (retained: what the
 * server keeps on disk for it). Read from pg_replication_slots, which any role may read, so the
 * figures are there whether or not a consumer runs (a stopped consumer is the case that matters).
 */

export interface SlotHealth {
  slot: string;
  /** reserved, extended, unreserved, lost (or null on servers that do not say). */
  walStatus: string | null;
  active: boolean;
  lagBytes: number;
  retainedBytes: number;
}

const SLOTS_SQL = `select slot_name as slot, wal_status, active,
  coalesce(pg_current_wal_lsn() - confirmed_flush_lsn, 0)::float8 as lag,
  coalesce(pg_current_wal_lsn() - restart_lsn, 0)::float8 as retained
  from pg_replication_slots where slot_type = 'logical' and database = current_database() order by slot_name`;

interface SlotRow {
  slot: string;
  wal_status: string | null;
  active: boolean;
  lag: number;
  retained: number;
}

/** Every logical slot of the connected database; `query` runs SQL on the hub (a pg client, or the store's pool when the hub is the metadata database). */
export async function readSlots(query: (text: string) => Promise<{ rows: unknown[] }>): Promise<SlotHealth[]> {
  const { rows } = await query(SLOTS_SQL);
  return (rows as SlotRow[]).map((r) => ({
    slot: r.slot,
    walStatus: r.wal_status,
    active: r.active,
    // An invalidated slot has no position left to measure from.
    lagBytes: r.wal_status === 'lost' ? 0 : Number(r.lag),
    retainedBytes: r.wal_status === 'lost' ? 0 : Number(r.retained),
  }));
}

export interface SlotAlert {
  slot: string;
  message: string;
  details: Record<string, unknown>;
}

export interface MonitorOptions {
  hubUrl: string;
  slot: string;
  /** Lag, in bytes, past which the slot is alerted. */
  lagAlertBytes: number;
  log: Logger;
  alert: (a: SlotAlert) => Promise<void>;
  everyMs?: number;
}

const mb = (bytes: number) => `${(bytes / 1024 ** 2).toFixed(1)} MB`;

/**
 * Watches one slot while `hubflow cdc run` streams: alerts once when its lag passes the
 * threshold or it is invalidated, and again only after it has recovered and breached anew.
 */
export class SlotMonitor {
  #breached = false;
  #lost = false;

  constructor(private readonly opts: MonitorOptions) {}

  /** One look at the slot: alerts a new breach, logs a recovery. Returns what it saw (null: no such slot). */
  async check(client: pg.Client): Promise<SlotHealth | null> {
    const health = (await readSlots((text) => client.query(text))).find((s) => s.slot === this.opts.slot) ?? null;
    if (!health) return null;
    const { log, lagAlertBytes, slot } = this.opts;
    log.debug({ event: 'cdc_slot', ...health }, 'replication slot position');
    if (health.walStatus === 'lost') {
      if (!this.#lost) {
        this.#lost = true;
        await this.opts.alert({
          slot,
          message: `replication slot ${slot} is invalidated (wal_status lost): changes since its last acknowledgement are gone; re-seed with hubflow cdc setup --reseed`,
          details: { walStatus: health.walStatus },
        });
      }
      return health;
    }
    const over = health.lagBytes > lagAlertBytes;
    if (over && !this.#breached) {
      await this.opts.alert({
        slot,
        message: `replication slot ${slot} lags ${mb(health.lagBytes)} behind the hub (threshold ${mb(lagAlertBytes)}); ${mb(health.retainedBytes)} of WAL retained for it`,
        details: { ...health, lagAlertBytes },
      });
    } else if (!over && this.#breached) {
      log.info({ event: 'cdc_slot_recovered', ...health }, `replication slot ${slot} is back under its lag threshold`);
    }
    this.#breached = over;
    return health;
  }

  /** Checks every `everyMs` on its own connection until the returned stop is called. */
  async start(): Promise<() => Promise<void>> {
    const client = await openPlain(this.opts.hubUrl, 'hubflow-cdc-monitor');
    let running: Promise<unknown> = Promise.resolve();
    const tick = () => {
      running = this.check(client).catch((err: unknown) => this.opts.log.warn({ err }, 'could not read the replication slot'));
      return running;
    };
    await tick();
    const timer = setInterval(tick, this.opts.everyMs ?? 15_000);
    return async () => {
      clearInterval(timer);
      await running;
      await client.end().catch(() => undefined);
    };
  }
}

export interface SlotGauges {
  lag: Gauge<'slot'>;
  retained: Gauge<'slot'>;
  active: Gauge<'slot'>;
  lost: Gauge<'slot'>;
}

/** The Prometheus series of the hub's logical slots (`hubflow_cdc_slot_*`), registered in `registers`. */
export function slotGauges(registers: Registry[]): SlotGauges {
  const labelNames = ['slot'] as const;
  return {
    lag: new Gauge({
      name: 'hubflow_cdc_slot_lag_bytes',
      help: "WAL written since the slot's consumer last acknowledged (confirmed_flush_lsn)",
      labelNames,
      registers,
    }),
    retained: new Gauge({
      name: 'hubflow_cdc_slot_retained_wal_bytes',
      help: 'WAL the hub keeps on disk for the slot (since its restart_lsn)',
      labelNames,
      registers,
    }),
    active: new Gauge({ name: 'hubflow_cdc_slot_active', help: 'Whether a consumer streams from the slot (1) or none (0)', labelNames, registers }),
    lost: new Gauge({
      name: 'hubflow_cdc_slot_invalidated',
      help: 'Whether the slot was invalidated (wal_status lost: re-seed with hubflow cdc setup --reseed)',
      labelNames,
      registers,
    }),
  };
}

/**
 * Reads the hub's slots into the gauges. A hub that cannot be reached, or runs without logical
 * slots, leaves no series: the scrape of everything else must not fail with it.
 */
export async function refreshSlotGauges(g: SlotGauges, hubUrl: string, log: Logger): Promise<void> {
  for (const gauge of Object.values(g)) gauge.reset();
  let client: pg.Client | undefined;
  try {
    client = await openPlain(hubUrl, 'hubflow-metrics');
    const c = client;
    for (const s of await readSlots((text) => c.query(text))) {
      g.lag.set({ slot: s.slot }, s.lagBytes);
      g.retained.set({ slot: s.slot }, s.retainedBytes);
      g.active.set({ slot: s.slot }, s.active ? 1 : 0);
      g.lost.set({ slot: s.slot }, s.walStatus === 'lost' ? 1 : 0);
    }
  } catch (err) {
    log.debug({ err }, 'no CDC slot metrics: the hub could not be read');
  } finally {
    await client?.end().catch(() => undefined);
  }
}
