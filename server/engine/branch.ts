import { sql, type Kysely, type RawBuilder } from 'kysely';
import { PermanentError } from '../../core/errors.ts';
import type { StoreSchema } from '../store/schema.ts';
import type { Dag, TaskDef } from './dag.ts';
import { isTaskDeclaration } from './task.ts';

/*
 * Airflow's branching (`@task.branch`, `task.branch` here). A branch's run returns the direct
 * downstream tasks to follow; the others are skipped when it succeeds, whatever their own
 * trigger rule, and from them the skip flows on by each task's rule (advance.ts). As in Airflow
 * since 2.2, a direct downstream task is not skipped when it is also downstream of a task the
 * branch followed: the join of `choose -> [a, b] -> join` plus `choose -> join` waits for `a`.
 */

/** What a branch followed: the ids it stored as its result; null when it stored none (marked successful by hand), which follows all, as in Airflow. */
export type Followed = readonly string[] | null;

/** A branch that did not follow a task waiting below it. */
export interface BranchSkip {
  branch: string;
  followed: readonly string[];
}

/**
 * The ids a branch's returned value names, checked against its direct downstream tasks: the
 * result it stores. A value that names anything else fails the branch for good (retrying the
 * same code returns the same), naming the branch and what it returned.
 */
export function followedIds(dag: Dag, task: TaskDef, returned: unknown): string[] {
  const what = `branch '${task.id}' of DAG '${dag.id}'`;
  const choices = `its direct downstream tasks (${task.downstream.join(', ')})`;
  const list: unknown[] = returned === null || returned === undefined ? [] : Array.isArray(returned) ? returned : [returned];
  const ids: string[] = [];
  for (const ref of list) {
    if (typeof ref !== 'string' && !isTaskDeclaration(ref)) {
      throw new PermanentError(
        `${what} returned ${describe(ref)}: a branch returns task ids (or references) among ${choices}, a list of them, or null for none`,
      );
    }
    const id = dag.taskIdOf(ref);
    if (id === undefined || !task.downstream.includes(id)) {
      const named = typeof ref === 'string' ? `'${ref}'` : id === undefined ? 'a task not in this DAG' : `'${id}'`;
      throw new PermanentError(`${what} returned ${named}, which is not one of ${choices}`);
    }
    if (!ids.includes(id)) ids.push(id);
  }
  return ids;
}

function describe(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a nested list';
  return typeof value === 'object' ? 'an object' : `a ${typeof value}`;
}

/** The part of a run's snapshot (advance.ts) a branch decision reads. */
interface Decisions {
  counts: ReadonlyMap<string, { success?: number }>;
  branches?: ReadonlyMap<string, Followed>;
}

/**
 * The branch, among a waiting task's upstreams, that succeeded without following it, if any.
 * Decisions come from the snapshot when it has them (a completion: see RunSnapshot.branches),
 * from the store otherwise; a task with no branch upstream never gets here.
 */
export async function skippingBranch(trx: Kysely<StoreSchema>, runId: number, dag: Dag, task: TaskDef, snapshot: Decisions): Promise<BranchSkip | undefined> {
  const succeeded = task.upstreamBranches.filter((b) => (snapshot.counts.get(b)?.success ?? 0) > 0);
  if (!succeeded.length) return undefined;
  const decisions = snapshot.branches ?? (await readDecisions(trx, runId, succeeded));
  for (const branch of succeeded) {
    const followed = decisions.get(branch);
    if (followed && !leadsTo(dag, followed, task.id)) return { branch, followed };
  }
  return undefined;
}

/** Whether the task is one of the followed ones or downstream of one. */
function leadsTo(dag: Dag, followed: readonly string[], taskId: string): boolean {
  const seen = new Set<string>();
  const stack = [...followed];
  while (stack.length) {
    const id = stack.pop()!;
    if (id === taskId) return true;
    if (seen.has(id)) continue;
    seen.add(id);
    stack.push(...(dag.tasks.get(id)?.downstream ?? []));
  }
  return false;
}

async function readDecisions(trx: Kysely<StoreSchema>, runId: number, branches: readonly string[]): Promise<Map<string, Followed>> {
  const rows = await trx
    .selectFrom('task_instances')
    .select(['task_id', 'result'])
    .where('run_id', '=', runId)
    .where('task_id', 'in', branches)
    .where('state', '=', 'success')
    .execute();
  return new Map(rows.map((r) => [r.task_id, asFollowed(r.result)]));
}

/** The decisions of the branches among the instances a completion finished successfully, from their results (JSON text). */
export function decisionsOf(dag: Dag, succeeded: readonly (readonly [taskId: string, result: string | undefined])[]): Map<string, Followed> {
  const decisions = new Map<string, Followed>();
  for (const [taskId, result] of succeeded) if (dag.tasks.get(taskId)?.branch) decisions.set(taskId, asFollowed(JSON.parse(result ?? 'null')));
  return decisions;
}

/** A stored branch result as a decision: a list of ids, or null (none recorded). */
export function asFollowed(result: unknown): Followed {
  return Array.isArray(result) && result.every((id) => typeof id === 'string') ? result : null;
}

/** Why a task was skipped by a branch, as its instance's error: the run page and `runs show` show it. */
export function skipReason(skip: BranchSkip): string {
  const followed = skip.followed.length ? skip.followed.map((id) => `'${id}'`).join(', ') : 'none of its downstream tasks';
  return `not followed by branch '${skip.branch}', which followed ${followed}`;
}

/** The writes that skip instances with their reasons: one statement per reason, literals only (advance.ts shares them in one simple-protocol query). */
export function reasonedSkips(skips: readonly { id: number; reason: string }[]): RawBuilder<unknown>[] {
  const byReason = new Map<string, number[]>();
  for (const s of skips) byReason.set(s.reason, [...(byReason.get(s.reason) ?? []), s.id]);
  return [...byReason].map(([reason, ids]) => {
    const error = sql.lit(JSON.stringify({ name: 'SkipTaskError', message: reason }));
    const list = sql.join(ids.map((id) => sql.lit(Number(id))));
    return sql`update task_instances set state = 'skipped', error = ${error}::jsonb, ended_at = now() where id = any(array[${list}]::bigint[])`;
  });
}
