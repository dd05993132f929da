import { isRetriedTransaction } from '../../core/sqlstate.ts';

/**
 * Runs `fn` again (up to five tries, after a short random wait) when it failed on a deadlock or
 * serialization failure, or because the server ended the connection it ran on (a restart or
 * failover): each of these is reported instead of a commit, so what `fn` sent did not happen.
 */
export async function withRetry<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await fn();
    } catch (err) {
      if (attempt >= 5 || !isRetriedTransaction(err)) throw err;
      await new Promise((r) => setTimeout(r, Math.random() * 20 * attempt));
    }
  }
}
