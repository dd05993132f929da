/** How a failed task is tried again. `attempts` counts every try, the first included. */
export interface RetryPolicy {
  attempts: number;
  backoff: 'exponential' | 'fixed';
  baseMs: number;
  /** Cap on any one delay: BullMQ's own exponential backoff has none. */
  maxMs: number;
  /** 'full' draws the delay uniformly from [0, capped delay] (AWS "full jitter"), so retries of many tasks that failed together spread out instead of arriving together. */
  jitter: 'full' | 'none';
}

export const DEFAULT_RETRY: Readonly<RetryPolicy> = Object.freeze({
  attempts: 3,
  backoff: 'exponential',
  baseMs: 1_000,
  maxMs: 300_000,
  jitter: 'full',
});

/** The ceiling of the delay after `failures` failed tries (1 = after the first). */
export function backoffCeiling(policy: RetryPolicy, failures: number): number {
  const grown = policy.backoff === 'fixed' ? policy.baseMs : policy.baseMs * 2 ** Math.max(0, failures - 1);
  return Math.min(policy.maxMs, grown);
}

/** The delay before the next try, in ms: within [0, ceiling] with full jitter, the ceiling without. */
export function backoffDelay(policy: RetryPolicy, failures: number, random: () => number = Math.random): number {
  const ceiling = backoffCeiling(policy, failures);
  return policy.jitter === 'full' ? Math.floor(random() * (ceiling + 1)) : ceiling;
}
