import type { TriggerRule } from '../../server/engine/task.ts';
import type { Decision } from '../../server/engine/trigger-rules.ts';

/*
 * Airflow's definition of its trigger rules, transcribed as plainly as possible from
 * TriggerRuleDep._evaluate_direct_relatives (airflow-core, ti_deps/deps/trigger_rule_dep.py):
 * first the state the scheduler flags a task with when its rule can no longer be met
 * (flag_upstream_failed), then whether the rule is met. It counts instances, where hubflow's
 * decide() only asks which states are present; the tests hold one against the other.
 */

/** An upstream instance as Airflow counts it: finished in one of four states, or not yet ('running'). */
export type UpstreamState = 'success' | 'failed' | 'upstream_failed' | 'skipped' | 'running';

export const UPSTREAM_STATES: readonly UpstreamState[] = ['success', 'failed', 'upstream_failed', 'skipped', 'running'];

export function airflowDecision(rule: TriggerRule, states: readonly UpstreamState[]): Decision {
  // A task without upstreams, or with 'always', passes the dependency at once.
  if (states.length === 0 || rule === 'always') return 'ready';
  const count = (state: UpstreamState) => states.filter((s) => s === state).length;
  const success = count('success');
  const skipped = count('skipped');
  const failed = count('failed');
  const upstreamFailed = count('upstream_failed');
  const upstream = states.length;
  const done = success + skipped + failed + upstreamFailed;
  const upstreamDone = done >= upstream;
  const nonSkippedDone = success + failed + upstreamFailed;
  const nonSkippedUpstream = upstream - skipped;

  let flagged: 'skipped' | 'upstream_failed' | undefined;
  switch (rule) {
    case 'all_success':
      if (upstreamFailed || failed) flagged = 'upstream_failed';
      else if (skipped) flagged = 'skipped';
      break;
    case 'all_failed':
      if (success || skipped) flagged = 'skipped';
      break;
    case 'one_success':
      if (upstreamDone && done === skipped) flagged = 'skipped';
      else if (upstreamDone && success <= 0) flagged = 'upstream_failed';
      break;
    case 'one_failed':
      if (upstreamDone && !(failed || upstreamFailed)) flagged = 'skipped';
      break;
    case 'one_done':
      if (upstreamDone && !(failed || success)) flagged = 'skipped';
      break;
    case 'none_failed':
      if (upstreamFailed || failed) flagged = 'upstream_failed';
      break;
    case 'none_failed_min_one_success':
      if (upstreamFailed || failed) flagged = 'upstream_failed';
      else if (skipped === upstream) flagged = 'skipped';
      break;
    case 'none_skipped':
      if (skipped) flagged = 'skipped';
      break;
    case 'all_skipped':
      if (success || failed || upstreamFailed) flagged = 'skipped';
      break;
    case 'all_done_min_one_success':
      if (skipped > 0) flagged = 'skipped';
      else if (nonSkippedDone >= nonSkippedUpstream && success === 0) flagged = 'upstream_failed';
      break;
    case 'all_done':
      break;
  }
  if (flagged) return flagged;

  const met: Record<Exclude<TriggerRule, 'always'>, boolean> = {
    all_success: upstream - success <= 0,
    all_failed: upstream - failed - upstreamFailed <= 0,
    all_done: upstreamDone,
    all_done_min_one_success: skipped === 0 && nonSkippedDone >= nonSkippedUpstream && success > 0,
    one_success: success > 0,
    one_failed: failed > 0 || upstreamFailed > 0,
    one_done: success + failed > 0,
    none_failed: upstream - success - skipped <= 0,
    none_failed_min_one_success: upstream - success - skipped <= 0,
    none_skipped: upstreamDone && skipped === 0,
    all_skipped: upstream - skipped <= 0,
  };
  return met[rule] ? 'ready' : 'wait';
}

/** Every multiset of upstream states of 1 to `max` instances: each mix once, whatever its order. */
export function stateMixes(max: number): UpstreamState[][] {
  const mixes: UpstreamState[][] = [];
  const grow = (mix: UpstreamState[], from: number) => {
    if (mix.length) mixes.push(mix);
    if (mix.length === max) return;
    for (let i = from; i < UPSTREAM_STATES.length; i++) grow([...mix, UPSTREAM_STATES[i]!], i);
  };
  grow([], 0);
  return mixes;
}
