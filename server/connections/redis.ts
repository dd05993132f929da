import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { open, rm } from 'node:fs/promises';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Config } from '../../core/config.ts';
import { HubflowError } from '../../core/errors.ts';
import { PRIVATE_FILE_MODE, privateDir } from '../../core/private-files.ts';
import {
  freeLoopbackPort,
  maskUrl,
  noop,
  pidAlive,
  readInstance,
  readTail,
  reasonOf,
  sleep,
  withStartLock,
  withTimeout,
  writeInstance,
  type ResolvedService,
} from './instance.ts';
import type { Logger } from '../../core/log.ts';
import { untilReachable } from './outage.ts';

export interface ResolveRedisOptions {
  /** Whether to try 127.0.0.1:6379 before starting a private server; tests turn it off. */
  probeLocal?: boolean;
  /** Wait (with backoff) for a configured Redis that cannot be reached right now, rather than fail. */
  wait?: boolean;
}

const ENV_TIMEOUT_MS = 2_000;
const LOCAL_TIMEOUT_MS = 500;
const START_TIMEOUT_MS = 10_000;
const LOCAL_URL = 'redis://127.0.0.1:6379';

/**
 * Finds the Redis hubflow should use: HUBFLOW_REDIS_URL, else a Redis on 127.0.0.1:6379, else a
 * private redis-server under <HUBFLOW_HOME>/redis shared by every hubflow process on this machine.
 */
export async function resolveRedis(config: Config, log: Logger, options: ResolveRedisOptions = {}): Promise<ResolvedService> {
  const configured = config.HUBFLOW_REDIS_URL;
  if (configured) {
    try {
      const ping = () => pingRedis(configured, ENV_TIMEOUT_MS);
      await (options.wait ? untilReachable({ name: 'Redis', url: configured }, log, ping) : ping());
    } catch (err) {
      throw new HubflowError(
        `HUBFLOW_REDIS_URL ${maskUrl(configured)} did not answer PING (${reasonOf(err)}); ` +
          'start Redis there, fix the URL, or unset HUBFLOW_REDIS_URL to use a local one',
        { cause: err },
      );
    }
    log.info({ url: maskUrl(configured) }, 'using Redis from HUBFLOW_REDIS_URL');
    return { url: configured, source: 'env', stop: noop };
  }

  if (options.probeLocal !== false && (await answersPing(LOCAL_URL, LOCAL_TIMEOUT_MS))) {
    log.info({ url: LOCAL_URL }, 'using the local Redis');
    return { url: LOCAL_URL, source: 'local', stop: noop };
  }

  return privateRedis(path.resolve(config.HUBFLOW_HOME, 'redis'), log);
}

interface RedisInstance {
  port: number;
  pid: number;
}

async function privateRedis(dir: string, log: Logger): Promise<ResolvedService> {
  await privateDir(dir);
  const instanceFile = path.join(dir, 'instance.json');

  // Two processes starting at once would otherwise both write the same append-only file.
  return withStartLock(dir, async () => {
    const running = await readInstance<RedisInstance>(instanceFile);
    if (running && pidAlive(running.pid) && typeof running.port === 'number') {
      const url = loopbackUrl(running.port);
      if (await answersPing(url, LOCAL_TIMEOUT_MS)) {
        log.info({ url, pid: running.pid }, 'reusing the private Redis started by another hubflow process');
        return { url, source: 'embedded' as const, stop: noop };
      }
    }

    const port = await freeLoopbackPort();
    const logFile = path.join(dir, 'redis.log');
    const { child, logOffset } = await spawnRedis(dir, port, logFile);
    const url = loopbackUrl(port);
    try {
      await waitForPing(url, child, START_TIMEOUT_MS);
    } catch (err) {
      await killAndWait(child);
      const tail = await readTail(logFile, logOffset);
      throw new HubflowError(`the private redis-server on port ${port} did not start (${reasonOf(err)})${tail ? `; its log ${logFile} says:\n${tail}` : ''}`, {
        cause: err,
      });
    }

    const pid = child.pid!;
    await writeInstance(instanceFile, { port, pid } satisfies RedisInstance);
    log.info({ url, pid, dir }, 'started a private Redis');

    let stopped = false;
    child.on('exit', (code, signal) => {
      if (!stopped) log.warn({ code, signal, logFile }, 'the private Redis exited unexpectedly');
    });
    // Without this a process that forgets stop() would leave redis-server running forever.
    const killOnExit = () => child.kill('SIGTERM');
    process.once('exit', killOnExit);

    return {
      url,
      source: 'embedded' as const,
      async stop() {
        if (stopped) return;
        stopped = true;
        process.off('exit', killOnExit);
        await killAndWait(child);
        const current = await readInstance<RedisInstance>(instanceFile);
        if (current?.pid === pid) await rm(instanceFile, { force: true });
        log.info({ pid }, 'stopped the private Redis');
      },
    };
  });
}

async function spawnRedis(dir: string, port: number, logFile: string): Promise<{ child: ChildProcess; logOffset: number }> {
  // Redis writes its log (and any fatal start-up error) to stdout, so stdout goes to the log file:
  // that keeps no pipe open to this process and lets a failed start be explained from the file.
  const logHandle = await open(logFile, 'a', PRIVATE_FILE_MODE);
  const logOffset = (await logHandle.stat()).size;
  try {
    const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--appendonly', 'yes', '--daemonize', 'no'], {
      cwd: dir,
      stdio: ['ignore', logHandle.fd, logHandle.fd],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    }).catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') {
        throw new HubflowError(
          'no Redis found: HUBFLOW_REDIS_URL is not set, nothing answers on 127.0.0.1:6379, and redis-server is not on PATH. ' +
            'Set HUBFLOW_REDIS_URL=redis://host:port, or install Redis (apt-get install redis-server / brew install redis) ' +
            'so that redis-server is on PATH',
          { cause: err },
        );
      }
      throw new HubflowError(`could not run redis-server: ${err.message}`, { cause: err });
    });
    // The server outlives no one by accident (see killOnExit), but must not keep this process alive.
    child.unref();
    return { child, logOffset };
  } finally {
    await logHandle.close();
  }
}

async function waitForPing(url: string, child: ChildProcess, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`redis-server exited (code ${child.exitCode ?? 'none'}, signal ${child.signalCode ?? 'none'})`);
    }
    if (await answersPing(url, 250)) return;
    if (Date.now() > deadline) throw new Error(`no PING reply within ${timeoutMs / 1000} s`);
    await sleep(30);
  }
}

async function killAndWait(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = once(child, 'exit');
  child.kill('SIGTERM');
  // SIGTERM lets Redis flush its append-only file; SIGKILL only if it hangs.
  const force = setTimeout(() => child.kill('SIGKILL'), 5_000);
  try {
    await exited;
  } finally {
    clearTimeout(force);
  }
}

/**
 * The Redis hubflow uses, without starting anything: the configured URL, else a private
 * redis-server a running hubflow process started under HUBFLOW_HOME, else the local one.
 */
export async function runningRedisUrl(config: Config): Promise<string> {
  if (config.HUBFLOW_REDIS_URL) return config.HUBFLOW_REDIS_URL;
  const running = await readInstance<RedisInstance>(path.resolve(config.HUBFLOW_HOME, 'redis', 'instance.json'));
  return running && pidAlive(running.pid) && typeof running.port === 'number' ? loopbackUrl(running.port) : LOCAL_URL;
}

/** Connects, PINGs and disconnects; rejects on any failure within timeoutMs. */
export async function pingRedis(url: string, timeoutMs: number): Promise<void> {
  const client = new Redis(url, {
    lazyConnect: true,
    connectTimeout: timeoutMs,
    commandTimeout: timeoutMs,
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    // A probe must fail once, not reconnect in the background and emit errors nobody handles.
    retryStrategy: () => null,
  });
  let lastError: unknown;
  client.on('error', (err: unknown) => {
    lastError = err;
  });
  try {
    await withTimeout(
      (async () => {
        await client.connect();
        await client.ping();
      })(),
      timeoutMs,
    );
  } catch (err) {
    throw err instanceof Error && err.message !== 'Connection is closed.' ? err : (lastError ?? err);
  } finally {
    client.disconnect();
  }
}

function answersPing(url: string, timeoutMs: number): Promise<boolean> {
  return pingRedis(url, timeoutMs).then(
    () => true,
    () => false,
  );
}

function loopbackUrl(port: number): string {
  return `redis://127.0.0.1:${port}`;
}
