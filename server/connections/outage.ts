import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../core/log.ts';
import { isServerUnavailable } from '../../core/sqlstate.ts';
import { maskUrl, reasonOf } from './instance.ts';

/*
 * Riding out outages: a service that cannot be reached right now (refused, reset, timed out,
 * starting up) is waited for with capped exponential backoff; one that answers "wrong" (bad
 * credentials, no such database, an unknown host) is a configuration error and fails at once.
 */

/** The first wait after a failed attempt; each later one doubles, up to OUTAGE_MAX_DELAY_MS. */
export const OUTAGE_FIRST_DELAY_MS = 1_000;
export const OUTAGE_MAX_DELAY_MS = 30_000;

/** A service a process depends on, and how to ask whether it answers. */
export interface Service {
  name: 'PostgreSQL' | 'Redis';
  url: string;
  /** Resolves when the service answers; rejects with the reason it does not. */
  probe(): Promise<void>;
}

// Connection-level errno codes; with the SQLSTATEs of a server that is shutting down, starting
// up or full (isServerUnavailable), all of them pass. An unknown host (ENOTFOUND) is a wrong
// URL, not an outage.
const UNREACHABLE_ERRNOS = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'EPIPE',
  'EAI_AGAIN',
]);
// Messages of pg, ioredis and hubflow's own probes for a connection lost or never made.
const UNREACHABLE_MESSAGE =
  /Connection terminated|connection timeout|timeout expired|Connection is closed|timed out after|no PING reply|Stream isn't writeable|Reached the max retries per request limit/i;

/** Whether an error says a service cannot be reached right now (as opposed to refusing us). */
export function isUnreachable(err: unknown): boolean {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AggregateError && e.errors.some(isUnreachable)) return true;
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && (UNREACHABLE_ERRNOS.has(code) || isServerUnavailable(code))) return true;
    if (e instanceof Error && UNREACHABLE_MESSAGE.test(e.message)) return true;
  }
  return false;
}

/** The wait after the nth failed attempt (from 1): 1 s, 2 s, 4 s, ... up to 30 s. */
export function outageDelay(attempt: number): number {
  return Math.min(OUTAGE_MAX_DELAY_MS, OUTAGE_FIRST_DELAY_MS * 2 ** Math.min(attempt - 1, 30));
}

/** 'ECONNREFUSED' rather than 'connect ECONNREFUSED 127.0.0.1:5432': the URL is said already. */
function shortReason(err: unknown): string {
  for (let e: unknown = err, depth = 0; e && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof AggregateError && e.errors.length) return shortReason(e.errors[0]);
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) return code;
  }
  return reasonOf(err);
}

function ordinal(n: number): string {
  const tens = n % 100;
  const suffix = tens >= 11 && tens <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th');
  return `${n}${suffix}`;
}

/**
 * Runs `attempt` until it succeeds. While it fails because `service` cannot be reached, waits
 * with capped exponential backoff, logging each failed attempt ("waiting for PostgreSQL at ...:
 * ECONNREFUSED (retrying; 3rd attempt, next in 4 s)") and, at the end, that it is back. Any other
 * error is thrown at once, as is an abort of `signal`.
 */
export async function untilReachable<T>(service: Pick<Service, 'name' | 'url'>, log: Logger, attempt: () => Promise<T>, signal?: AbortSignal): Promise<T> {
  const since = Date.now();
  for (let n = 1; ; n++) {
    signal?.throwIfAborted();
    try {
      const result = await attempt();
      if (n > 1)
        log.info(
          { event: 'service_back', service: service.name, url: maskUrl(service.url), attempts: n, seconds: Math.round((Date.now() - since) / 1000) },
          `${service.name} at ${maskUrl(service.url)} answers again`,
        );
      return result;
    } catch (err) {
      if (!isUnreachable(err)) throw err;
      const delay = outageDelay(n);
      log.warn(
        { event: 'service_unreachable', service: service.name, url: maskUrl(service.url), attempt: n, retryInMs: delay },
        `waiting for ${service.name} at ${maskUrl(service.url)}: ${shortReason(err)} (retrying; ${ordinal(n)} attempt, next in ${Math.round(delay / 1000)} s)`,
      );
      await sleep(delay, undefined, { signal });
    }
  }
}

/**
 * A long-running process's services. Any part of the process that meets an error calls
 * failed(err): a connection error starts, once per service, a wait that probes it with backoff
 * and says so (the other parts' errors during the outage are not repeated); parts that must not
 * run without their services await untilUp().
 */
export class ServiceWatch {
  readonly #waits = new Map<string, Promise<void>>();
  #check: Promise<void> | undefined;
  readonly #abort = new AbortController();

  constructor(
    readonly services: readonly Service[],
    private readonly log: Logger,
  ) {}

  /** Whether `err` says a service cannot be reached; if so, the services are checked (once at a time). */
  failed(err: unknown): boolean {
    if (!isUnreachable(err) || this.#abort.signal.aborted) return false;
    this.#check ??= this.#probeAll(err).finally(() => {
      this.#check = undefined;
    });
    return true;
  }

  /** Resolves when no service is being waited for; rejects only when the watch is closed. */
  async untilUp(signal?: AbortSignal): Promise<void> {
    for (;;) {
      this.#abort.signal.throwIfAborted();
      signal?.throwIfAborted();
      const pending = [this.#check, ...this.#waits.values()].filter((p) => p !== undefined);
      if (!pending.length) return;
      const stopped = [this.#abort.signal, ...(signal ? [signal] : [])];
      await Promise.race([
        Promise.all(pending),
        ...stopped.map((s) => new Promise((_, reject) => s.addEventListener('abort', () => reject(s.reason), { once: true }))),
      ]);
    }
  }

  close(): void {
    this.#abort.abort(new Error('the process is stopping'));
  }

  async #probeAll(cause: unknown): Promise<void> {
    const down: Service[] = [];
    await Promise.all(
      this.services.map((s) =>
        s.probe().catch((err: unknown) => {
          if (isUnreachable(err)) down.push(s);
        }),
      ),
    );
    if (!down.length) {
      this.log.warn({ err: cause }, 'a connection failed; every service answers now, carrying on');
      return;
    }
    for (const service of down) {
      if (this.#waits.has(service.name)) continue;
      const wait = untilReachable(service, this.log, () => service.probe(), this.#abort.signal)
        .catch((err: unknown) => {
          // Back, but refusing (credentials changed, database dropped): said, and each use fails with it.
          if (!this.#abort.signal.aborted)
            this.log.error({ err, service: service.name }, `${service.name} at ${maskUrl(service.url)} answers but refuses: ${reasonOf(err)}`);
        })
        .finally(() => this.#waits.delete(service.name));
      this.#waits.set(service.name, wait);
    }
  }
}
