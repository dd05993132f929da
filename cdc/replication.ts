import type { EventEmitter } from 'node:events';
import pg from 'pg';
import { PermanentError } from '../core/errors.ts';

/**
 * A logical replication connection (`replication=database`): it runs the replication commands
 * (CREATE_REPLICATION_SLOT, START_REPLICATION) and plain SQL. Every hubflow connection to the
 * hub for CDC runs in UTC with ISO dates, so the stream and the initial cut print values alike.
 */

export const SESSION_OPTIONS = '-c timezone=UTC -c datestyle=ISO,YMD -c intervalstyle=iso_8601 -c extra_float_digits=3';

/** The part of pg's wire connection the stream uses (not in @types/pg). */
export interface WireConnection extends EventEmitter {
  sendCopyFromChunk(chunk: Buffer): void;
  stream: { pause(): void; resume(): void };
}

export interface ReplicationClient {
  client: pg.Client;
  wire: WireConnection;
}

export async function openReplication(url: string, applicationName: string): Promise<ReplicationClient> {
  // `replication` is a startup parameter pg passes on, missing from @types/pg.
  const config = { connectionString: url, replication: 'database', options: SESSION_OPTIONS, application_name: applicationName } as pg.ClientConfig;
  const client = new pg.Client(config);
  client.on('error', () => undefined);
  await client.connect();
  return { client, wire: (client as unknown as { connection: WireConnection }).connection };
}

/** Every value as the server prints it, as pgoutput sends it: the initial cut and the stream then agree on every type. */
const SERVER_TEXT = { getTypeParser: () => (value: string) => value };

/** An ordinary connection in the same session settings; with `serverText`, values stay the server's text. */
export async function openPlain(url: string, applicationName: string, options: { serverText?: boolean } = {}): Promise<pg.Client> {
  const client = new pg.Client({
    connectionString: url,
    options: SESSION_OPTIONS,
    application_name: applicationName,
    ...(options.serverText ? { types: SERVER_TEXT } : {}),
  });
  client.on('error', () => undefined);
  await client.connect();
  return client;
}

export interface SlotState {
  plugin: string | null;
  walStatus: string | null;
  active: boolean;
}

/** The slot as the server sees it, or null when there is none. Literal SQL: a walsender takes no parameters. */
export async function slotState(client: pg.Client, slot: string): Promise<SlotState | null> {
  const { rows } = await client.query<{ plugin: string | null; wal_status: string | null; active: boolean }>(
    `select plugin, wal_status, active from pg_replication_slots where slot_name = ${client.escapeLiteral(slot)}`,
  );
  const r = rows[0];
  return r ? { plugin: r.plugin, walStatus: r.wal_status, active: r.active } : null;
}

/** The slot fell further behind than max_slot_wal_keep_size: the changes it held are gone, only a new initial cut recovers. */
export class SlotInvalidatedError extends PermanentError {
  constructor(slot: string, options: { cause?: unknown } = {}) {
    super(
      `replication slot ${slot} is invalidated (wal_status lost): it fell further behind than max_slot_wal_keep_size and the server removed WAL it still needed, ` +
        'so changes since its last acknowledgement are gone. Re-seed it with a new slot and initial cut: hubflow cdc setup --reseed',
      options,
    );
  }
}

/** Refuses a slot that is missing or invalidated, before streaming from it. */
export async function assertSlotUsable(client: pg.Client, slot: string): Promise<void> {
  const state = await slotState(client, slot);
  if (!state) throw new PermanentError(`replication slot ${slot} does not exist: run hubflow cdc setup`);
  if (state.walStatus === 'lost') throw new SlotInvalidatedError(slot);
}
