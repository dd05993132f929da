import type { Dag, TaskDef } from './dag.ts';
import type { DagRegistry } from './loader.ts';
import { freeFrom, type Resource } from './resources.ts';

/** The declared resources a task uses. */
export function resourcesOf(registry: DagRegistry, task: TaskDef): Resource[] {
  return task.uses.map((id) => registry.resources.get(id)).filter((r): r is Resource => r !== undefined);
}

export interface Deferral {
  /** When the task may start: the end of the blackout, plus jitter. */
  until: Date;
  /** 'payroll-db: payroll batch until 03:30Z', for the task instance, the job and the logs. */
  reason: string;
}

/**
 * Whether a task may start at `at`, and if not, until when it waits. The wait ends at the
 * blackout's end plus a random share of the resource's jitter, so tasks deferred by the same
 * window do not all start in the same second.
 */
export function deferralFor(resources: readonly Resource[], at: Date, random: () => number = Math.random): Deferral | null {
  const { at: free, held } = freeFrom(resources, at);
  if (!held) return null;
  const jitter = Math.max(0, ...resources.filter((r) => r.blackouts.length).map((r) => r.deferJitterMs));
  return {
    until: new Date(free.getTime() + Math.floor(random() * (jitter + 1))),
    reason: `${held.resource}: ${held.reason} until ${held.end.toISOString()}`,
  };
}

/** Where a delay that would end inside a blackout ends instead (a retry's backoff). */
export function delayPastBlackouts(resources: readonly Resource[], delayMs: number, now = Date.now()): { delayMs: number; deferral: Deferral | null } {
  const deferral = deferralFor(resources, new Date(now + delayMs));
  return deferral ? { delayMs: deferral.until.getTime() - now, deferral } : { delayMs, deferral: null };
}

export function taskOf(registry: DagRegistry, dagId: string, taskId: string): { dag: Dag; task: TaskDef } | undefined {
  const dag = registry.dags.get(dagId);
  const task = dag?.tasks.get(taskId);
  return dag && task ? { dag, task } : undefined;
}
