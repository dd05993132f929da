import type { TiState } from '../store/schema.ts';
import type { TriggerRule } from './dag.ts';

/** What a waiting task does next, given the states of all its upstream task instances. */
export type Decision = 'wait' | 'ready' | 'upstream_failed' | 'skipped';

/** How many upstream instances are in each state. */
export type StateCounts = Partial<Record<TiState, number>>;

/**
 * Airflow's trigger rules, as its TriggerRuleDep decides them: a task is resolved (`skipped`,
 * `upstream_failed`) as soon as its rule can no longer be met, and runs as soon as it is met;
 * all_success gives up at the first failed upstream instead of waiting for the rest. A decision
 * depends only on which states are present, never on how many instances are in each:
 * completions probe for presence rather than count (migration 0006), and must stay correct.
 *
 * A cancelled upstream never produced its result: for its downstream it failed. Airflow tells a
 * failed upstream from an upstream_failed one for one rule only: one_done runs at the first
 * success or failure, and an upstream that never ran (upstream_failed) is neither.
 */
export function decide(rule: TriggerRule, upstream: StateCounts): Decision {
  // Whatever its upstreams do: a run starts it with its root tasks.
  if (rule === 'always') return 'ready';
  let total = 0;
  for (const n of Object.values(upstream)) total += n ?? 0;
  if (total === 0) return 'ready';
  const success = upstream.success ?? 0;
  const ranAndFailed = (upstream.failed ?? 0) + (upstream.cancelled ?? 0);
  const failed = ranAndFailed + (upstream.upstream_failed ?? 0);
  const skipped = upstream.skipped ?? 0;
  const done = success + failed + skipped === total;
  switch (rule) {
    case 'all_success':
      if (failed) return 'upstream_failed';
      if (skipped) return 'skipped';
      return success === total ? 'ready' : 'wait';
    case 'all_done':
      return done ? 'ready' : 'wait';
    case 'all_done_min_one_success':
      // Airflow 3.1's rule: a skipped upstream is not "done" for it, and skips it at once.
      if (skipped) return 'skipped';
      if (!done) return 'wait';
      return success ? 'ready' : 'upstream_failed';
    case 'one_failed':
      if (failed) return 'ready';
      return done ? 'skipped' : 'wait';
    case 'one_success':
      if (success) return 'ready';
      if (!done) return 'wait';
      return failed ? 'upstream_failed' : 'skipped';
    case 'none_failed':
      if (failed) return 'upstream_failed';
      return done ? 'ready' : 'wait';
    case 'none_failed_min_one_success':
      if (failed) return 'upstream_failed';
      if (!done) return 'wait';
      return success ? 'ready' : 'skipped';
    case 'all_failed':
      if (success || skipped) return 'skipped';
      return done ? 'ready' : 'wait';
    case 'one_done':
      if (success || ranAndFailed) return 'ready';
      return done ? 'skipped' : 'wait';
    case 'all_skipped':
      if (success || failed) return 'skipped';
      return done ? 'ready' : 'wait';
    case 'none_skipped':
      if (skipped) return 'skipped';
      return done ? 'ready' : 'wait';
  }
}
