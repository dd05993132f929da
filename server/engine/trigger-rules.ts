import type { TiState } from '../store/schema.ts';
import type { TriggerRule } from './dag.ts';

/** What a waiting task does next, given the states of all its upstream task instances. */
export type Decision = 'wait' | 'ready' | 'upstream_failed' | 'skipped';

/**
 * Airflow's trigger rules. A decision is taken as early as it is certain: all_success gives
 * up at the first failed upstream instead of waiting for the rest.
 */
export function decide(rule: TriggerRule, upstream: readonly TiState[]): Decision {
  const total = upstream.length;
  if (total === 0) return 'ready';
  let success = 0;
  let failed = 0;
  let skipped = 0;
  for (const s of upstream) {
    if (s === 'success') success++;
    else if (s === 'failed' || s === 'upstream_failed') failed++;
    else if (s === 'skipped') skipped++;
  }
  const done = success + failed + skipped === total;
  switch (rule) {
    case 'all_success':
      if (failed) return 'upstream_failed';
      if (skipped) return 'skipped';
      return success === total ? 'ready' : 'wait';
    case 'all_done':
      return done ? 'ready' : 'wait';
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
  }
}
