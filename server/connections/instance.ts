import { open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { HubflowError } from '../../core/errors.ts';

/*
 * Bookkeeping shared by the embedded Redis and PostgreSQL: which private server runs where
 * (<HUBFLOW_HOME>/<service>/instance.json), a start lock, and small process helpers.
 */

/** A server hubflow talks to, however it was found. */
export interface ResolvedService {
  url: string;
  /** env: the configured URL; local: the conventional port on this machine; embedded: a private server under HUBFLOW_HOME. */
  source: 'env' | 'local' | 'embedded';
  /** Stops the server only if this process started it; otherwise does nothing. */
  stop(): Promise<void>;
}

/** The URL with its password replaced by ***, for logs and error messages: the one masking function, in core/. */
export { maskUrl } from '../../core/redact.ts';

export function reasonOf(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return reasonOf(err.errors[0]);
  if (err instanceof Error) return err.message || err.name;
  return String(err);
}

export function pidAlive(pid: unknown): pid is number {
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    // EPERM: the process exists but belongs to another user.
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function loopbackPortFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', () => resolve(false));
    server.listen(port, '127.0.0.1', () => server.close(() => resolve(true)));
  });
}

export function freeLoopbackPort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => (port ? resolve(port) : reject(new Error('no free loopback port'))));
    });
  });
}

export async function readInstance<T>(file: string): Promise<Partial<T> | undefined> {
  try {
    const parsed: unknown = JSON.parse(await readFile(file, 'utf8'));
    return parsed && typeof parsed === 'object' ? (parsed as Partial<T>) : undefined;
  } catch {
    return undefined;
  }
}

/** Written via rename so a concurrent reader never sees half a file; 0600 because it may hold a password. */
export async function writeInstance(file: string, value: object): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(value, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
}

/**
 * Runs fn while holding <dir>/start.lock, so two hubflow processes (or two calls in one) never
 * start two servers on one data directory. A lock whose holder died is taken over.
 */
export async function withStartLock<T>(dir: string, fn: () => Promise<T>, timeoutMs = 60_000): Promise<T> {
  const lockFile = path.join(dir, 'start.lock');
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      const handle = await open(lockFile, 'wx');
      try {
        await handle.writeFile(String(process.pid));
      } finally {
        await handle.close();
      }
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
    if (await lockIsStale(lockFile)) {
      await rm(lockFile, { force: true });
      continue;
    }
    if (Date.now() > deadline) {
      throw new HubflowError(`timed out waiting for ${lockFile}; if no hubflow process is starting, delete it`);
    }
    await sleep(100);
  }
  try {
    return await fn();
  } finally {
    await rm(lockFile, { force: true });
  }
}

async function lockIsStale(lockFile: string): Promise<boolean> {
  try {
    const holder = Number((await readFile(lockFile, 'utf8')).trim());
    if (holder > 0) return !pidAlive(holder);
    // Empty: its creator may be between open() and write(); only a while later is it abandoned.
    return Date.now() - (await stat(lockFile)).mtimeMs > 5_000;
  } catch {
    return false;
  }
}

export async function readTail(file: string, fromOffset: number, maxLines = 15): Promise<string> {
  try {
    const text = (await readFile(file, 'utf8')).slice(fromOffset);
    return text.trimEnd().split('\n').slice(-maxLines).join('\n');
  } catch {
    return '';
  }
}

export function withTimeout<T>(promise: Promise<T>, ms: number, message = `timed out after ${ms} ms`): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(message)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** stop() of a server this process did not start. */
export async function noop(): Promise<void> {}
