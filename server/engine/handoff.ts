import { sql } from 'kysely';
import type { Store } from '../store/db.ts';
import type { Dispatchable } from './advance.ts';
import type { EngineContext } from './types.ts';
import { deferralFor, resourcesOf, taskOf } from './windows.ts';

export interface Deferred {
  id: number;
  until: Date;
  reason: string;
}

/**
 * Hands queued instances to BullMQ. An instance whose resources are in blackout goes as a
 * delayed job that becomes due when the window ends (plus jitter), and is marked `deferred`
 * with the reason, in the store and in the job.
 */
export async function dispatchInstances(engine: EngineContext, items: readonly Dispatchable[]): Promise<void> {
  if (!items.length) return;
  const now = new Date();
  const deferred: Deferred[] = [];
  const jobs = items.map((d) => {
    const found = taskOf(engine.dags, d.dagId, d.taskId);
    const deferral = found?.task.uses.length ? deferralFor(resourcesOf(engine.dags, found.task), now) : null;
    if (!deferral) return d;
    deferred.push({ id: d.tiId, until: deferral.until, reason: deferral.reason });
    return { ...d, delayMs: Math.max(d.delayMs ?? 0, deferral.until.getTime() - now.getTime()), deferral };
  });
  await Promise.all([engine.dispatcher.enqueue(jobs), markDeferred(engine.db, deferred)]);
  for (const d of deferred) engine.log.info({ event: 'task_deferred', tiId: d.id, until: d.until, reason: d.reason }, `task deferred: ${d.reason}`);
}

/** Marks instances deferred until a blackout ends, unless they have started or finished meanwhile. */
export async function markDeferred(db: Store, items: readonly Deferred[]): Promise<void> {
  if (!items.length) return;
  await sql`
    update task_instances ti set state = 'deferred', deferred_until = v.until, deferred_reason = v.reason
    from unnest(${items.map((i) => i.id)}::bigint[], ${items.map((i) => i.until.toISOString())}::timestamptz[], ${items.map((i) => i.reason)}::text[])
      as v(id, until, reason)
    where ti.id = v.id and ti.state in ('queued', 'deferred', 'up_for_retry')`.execute(db);
}
