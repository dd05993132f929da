import { sql, type Kysely, type RawBuilder } from 'kysely';
import { describeError } from '../../core/errors.ts';
import { upstreamResult } from '../store/results.ts';
import type { DagRunRow, StoreSchema, TiState } from '../store/schema.ts';
import { TERMINAL_TI_STATES } from '../store/schema.ts';
import type { Dag, TaskDef } from './dag.ts';
import { decide, type StateCounts } from './trigger-rules.ts';
import { reasonedSkips, skippingBranch, skipReason, type Followed } from './branch.ts';

type Trx = Kysely<StoreSchema>;
/** The part of a run that advancing reads. */
export type RunRef = Pick<DagRunRow, 'id' | 'dag_id' | 'state'>;

/** A task instance the store has marked queued, to be handed to BullMQ after the commit. */
export interface Dispatchable {
  tiId: number;
  runId: number;
  dagId: string;
  taskId: string;
  mapIndex: number;
  generation: number;
  /** Tries left in the instance's budget: the BullMQ job's `attempts`. */
  triesLeft: number;
  delayMs?: number;
}

export interface AdvanceResult {
  dispatch: Dispatchable[];
  /** Set when this transaction finished the run. */
  finished?: { runId: number; state: 'success' | 'failed' };
  /** Instances failed while advancing (a map source that returned no list). */
  failed: { tiId: number; taskId: string; error: unknown }[];
  /**
   * The writes that carry out the decisions, not yet executed: the caller runs them, alone
   * or in one round trip with others and the COMMIT. Literals only (no bind parameters), so
   * that they can share a simple-protocol query string.
   */
  write: RawBuilder<unknown> | undefined;
}

export interface TiRef {
  id: number;
  task_id: string;
  map_index: number;
  state: TiState;
  try_number: number;
  max_tries: number;
  generation: number;
}

/** Mapped fan-out is bounded: every instance is a row and a job. */
export const MAX_MAP_LENGTH = 100_000;

/**
 * A run's task instances as advancing needs them: per task, the states its instances are in,
 * and the waiting (`scheduled`) instances themselves. A count may stand for "at least that
 * many" (a completion only probes whether a state is present: trigger rules ask no more), but
 * waiting instances are always counted exactly, since advancing moves them. It may hold only
 * some of the run's tasks (`covers`); advancing reads the others when a decision reaches them.
 */
export interface RunSnapshot {
  counts: Map<string, StateCounts>;
  waiting: Map<string, TiRef[]>;
  /** The tasks whose counts and waiting instances are here; null: every task of the run. */
  covers: Set<string> | null;
  /** Instances of the run not yet finished, or at least: it is 0 exactly when none is left. */
  live: number;
  /** Instances of the run failed or upstream_failed, or at least: 0 exactly when none. */
  failed: number;
  /**
   * From a completion: the decisions of the branches it finishes. Any other branch that
   * succeeded decided in the transaction that finished it, which skipped what it did not
   * follow, so a task still waiting below it was followed. Absent: read from the store when a
   * task below a branch is judged (a clear, say). See branch.ts.
   */
  branches?: ReadonlyMap<string, Followed>;
}

export interface SnapshotRow {
  task_id: string;
  state: TiState;
  n: number;
  waiting: Omit<TiRef, 'task_id' | 'state'>[] | null;
}

/** The SQL aggregate that builds snapshot rows; `state` may be overridden by the caller's CTE. */
export const WAITING_JSON = sql`json_agg(json_build_object('id', ti.id, 'map_index', ti.map_index, 'try_number', ti.try_number,
  'max_tries', ti.max_tries, 'generation', ti.generation))`;

function addRows(snapshot: RunSnapshot, rows: readonly SnapshotRow[]): void {
  for (const r of rows) {
    const counts = snapshot.counts.get(r.task_id) ?? {};
    counts[r.state] = (counts[r.state] ?? 0) + Number(r.n);
    snapshot.counts.set(r.task_id, counts);
    if (r.state === 'scheduled' && r.waiting) {
      snapshot.waiting.set(
        r.task_id,
        r.waiting.map((w) => ({ ...w, task_id: r.task_id, state: 'scheduled' as const })),
      );
    }
  }
}

/** A snapshot of some tasks (`covers`) and the run's totals, from rows the caller has read. */
export function buildSnapshot(rows: readonly SnapshotRow[], covers: Iterable<string>, totals: { live: number; failed: number }): RunSnapshot {
  const snapshot: RunSnapshot = { counts: new Map(), waiting: new Map(), covers: new Set(covers), ...totals };
  addRows(snapshot, rows);
  return snapshot;
}

async function readRows(trx: Trx, runId: number, taskIds?: readonly string[]): Promise<SnapshotRow[]> {
  const only = taskIds ? sql`and ti.task_id = any(${[...taskIds]}::text[])` : sql``;
  const { rows } = await sql<SnapshotRow>`
    select ti.task_id, ti.state, count(*)::int as n, ${WAITING_JSON} filter (where ti.state = 'scheduled') as waiting
    from task_instances ti where ti.run_id = ${runId} ${only} group by ti.task_id, ti.state`.execute(trx);
  return rows;
}

/** Every task of the run. */
export async function loadSnapshot(trx: Trx, runId: number): Promise<RunSnapshot> {
  const snapshot: RunSnapshot = { counts: new Map(), waiting: new Map(), covers: null, live: 0, failed: 0 };
  const rows = await readRows(trx, runId);
  addRows(snapshot, rows);
  for (const r of rows) {
    if (!TERMINAL_TI_STATES.has(r.state)) snapshot.live += Number(r.n);
    if (isFailed(r.state)) snapshot.failed += Number(r.n);
  }
  return snapshot;
}

/** Reads the tasks the snapshot lacks; safe under the run's lock, which every terminal transition takes. */
async function cover(trx: Trx, runId: number, snapshot: RunSnapshot, taskIds: readonly string[]): Promise<void> {
  const covers = snapshot.covers;
  if (!covers) return;
  const missing = taskIds.filter((id) => !covers.has(id));
  if (!missing.length) return;
  addRows(snapshot, await readRows(trx, runId, missing));
  for (const id of missing) covers.add(id);
}

const isFailed = (state: TiState) => state === 'failed' || state === 'upstream_failed' || state === 'cancelled';

/** Moves n instances of a task from one state to another (`from` null: new instances). */
function move(snapshot: RunSnapshot, taskId: string, from: TiState | null, to: TiState, n: number): void {
  const counts = snapshot.counts.get(taskId) ?? {};
  if (from) counts[from] = (counts[from] ?? 0) - n;
  counts[to] = (counts[to] ?? 0) + n;
  snapshot.counts.set(taskId, counts);
  const live = (s: TiState | null) => (s !== null && !TERMINAL_TI_STATES.has(s) ? n : 0);
  const failed = (s: TiState | null) => (s !== null && isFailed(s) ? n : 0);
  snapshot.live += live(to) - (from === null ? 0 : live(from));
  snapshot.failed += failed(to) - failed(from);
}

function upstreamCounts(snapshot: RunSnapshot, task: TaskDef): StateCounts {
  const total: StateCounts = {};
  for (const up of task.upstream) {
    for (const [state, n] of Object.entries(snapshot.counts.get(up) ?? {}) as [TiState, number][]) {
      total[state] = (total[state] ?? 0) + n;
    }
  }
  return total;
}

/** Runs an advance's writes, for callers that have nothing to combine them with. */
export async function applyAdvance(trx: Trx, result: AdvanceResult): Promise<AdvanceResult> {
  if (result.write) await sql`${result.write}`.execute(trx);
  return result;
}

/**
 * Moves a run forward inside the caller's transaction, which must hold the run's row lock:
 * evaluates the candidate tasks (and, transitively, whatever their resolution unblocks) against
 * their trigger rules, queues the ready ones (expanding mapped tasks), resolves the ones that
 * can no longer run, and finishes the run when nothing is left to do.
 */
export async function advanceRun(
  trx: Trx,
  run: RunRef,
  dag: Dag,
  candidates: Iterable<string>,
  /** The run's instances as of now, when the caller has them already (saves a round trip). */
  known?: RunSnapshot,
): Promise<AdvanceResult> {
  const snapshot = known ?? (await loadSnapshot(trx, run.id));
  const rank = new Map([...dag.tasks.keys()].map((id, i) => [id, i]));
  const pending = new Set<string>(candidates);

  const result: AdvanceResult = { dispatch: [], failed: [], write: undefined };
  const resolved: { id: number; state: TiState; reason?: string }[] = [];
  const toQueue: TiRef[] = [];
  // Instances made by expansion are inserted as queued already.
  const expanded: TiRef[] = [];

  while (pending.size) {
    // Lowest topological rank first, so a task is judged after every upstream it has.
    const next = [...pending].reduce((a, b) => (rank.get(a)! <= rank.get(b)! ? a : b));
    pending.delete(next);
    const task = dag.tasks.get(next)!;
    await cover(trx, run.id, snapshot, [next, ...task.upstream]);
    const instances = snapshot.waiting.get(next);
    if (!instances?.length) continue;
    const skip = task.upstreamBranches.length ? await skippingBranch(trx, run.id, dag, task, snapshot) : undefined;
    const decision = skip ? 'skipped' : decide(task.trigger, upstreamCounts(snapshot, task));
    if (decision === 'wait') continue;
    snapshot.waiting.delete(next);
    if (decision === 'ready' && task.map) {
      const placeholder = instances[0]!;
      const expansion = await expandMapped(trx, run, dag, task, placeholder);
      if ('error' in expansion) {
        move(snapshot, next, 'scheduled', 'failed', 1);
        result.failed.push({ tiId: placeholder.id, taskId: task.id, error: expansion.error });
        await failInstance(trx, run, placeholder, task, expansion.error);
        task.downstream.forEach((d) => pending.add(d));
      } else if (expansion.instances.length === 0) {
        move(snapshot, next, 'scheduled', 'skipped', 1);
        resolved.push({ id: placeholder.id, state: 'skipped' });
        task.downstream.forEach((d) => pending.add(d));
      } else {
        move(snapshot, next, 'scheduled', 'queued', 1);
        move(snapshot, next, null, 'queued', expansion.instances.length - 1);
        expanded.push(...expansion.instances);
      }
      continue;
    }
    if (decision === 'ready') {
      move(snapshot, next, 'scheduled', 'queued', instances.length);
      toQueue.push(...instances);
      continue;
    }
    move(snapshot, next, 'scheduled', decision, instances.length);
    for (const i of instances) resolved.push({ id: i.id, state: decision, ...(skip ? { reason: skipReason(skip) } : {}) });
    task.downstream.forEach((d) => pending.add(d));
  }

  const finished = run.state === 'running' && snapshot.live === 0;
  const runState = snapshot.failed > 0 ? 'failed' : 'success';
  const ids = (xs: readonly { id: number }[]) => sql`array[${sql.join(xs.map((x) => sql.lit(Number(x.id))))}]::bigint[]`;
  const writes: RawBuilder<unknown>[] = [];
  for (const state of ['upstream_failed', 'skipped'] as const) {
    const some = resolved.filter((r) => r.state === state && !r.reason);
    if (some.length) writes.push(sql`update task_instances set state = ${sql.lit(state)}, ended_at = now() where id = any(${ids(some)})`);
  }
  writes.push(...reasonedSkips(resolved.filter((r): r is { id: number; state: TiState; reason: string } => r.reason !== undefined)));
  if (toQueue.length) writes.push(sql`update task_instances set state = 'queued', ready_at = now() where id = any(${ids(toQueue)})`);
  if (finished) writes.push(sql`update dag_runs set state = ${sql.lit(runState)}, ended_at = now() where id = ${sql.lit(Number(run.id))}`);
  if (writes.length) result.write = sql.join(writes, sql`; `);
  for (const i of [...toQueue, ...expanded]) {
    result.dispatch.push({
      tiId: i.id,
      runId: run.id,
      dagId: dag.id,
      taskId: i.task_id,
      mapIndex: i.map_index,
      generation: i.generation,
      triesLeft: Math.max(1, i.max_tries - i.try_number),
    });
  }
  if (finished) result.finished = { runId: run.id, state: runState };
  return result;
}

async function expandMapped(trx: Trx, run: RunRef, dag: Dag, task: TaskDef, placeholder: TiRef): Promise<{ instances: TiRef[] } | { error: Error }> {
  const source = task.map!;
  // A mapped source expanded to nothing keeps only its placeholder (map index -1): no elements.
  const list = await upstreamResult(trx, run.id, source, dag.tasks.get(source)?.map !== undefined);
  if (!Array.isArray(list)) {
    return { error: new Error(`map: upstream '${source}' returned ${describeJson(list)}, expected a list`) };
  }
  if (list.length > MAX_MAP_LENGTH) {
    return { error: new Error(`map: upstream '${source}' returned ${list.length} items, more than ${MAX_MAP_LENGTH}`) };
  }
  if (list.length === 0) return { instances: [] };

  const items = list.map((item) => JSON.stringify(item ?? null));
  await trx
    .updateTable('task_instances')
    .set({ map_index: 0, map_item: items[0]!, state: 'queued', ready_at: sql`now()` })
    .where('id', '=', placeholder.id)
    .execute();
  const first: TiRef = { ...placeholder, map_index: 0, state: 'queued' };
  const instances = [first];
  if (items.length > 1) {
    const rest = await sql<{ id: number; map_index: number }>`
      insert into task_instances (run_id, dag_id, task_id, map_index, state, max_tries, generation, map_item, ready_at, pools, pool_slots)
      select ${run.id}, ${run.dag_id}, ${task.id}, m.idx, 'queued', p.max_tries - p.try_number, p.generation, m.item, now(), p.pools, p.pool_slots
      from unnest(${items.slice(1)}::jsonb[]) with ordinality as m(item, idx), task_instances p
      where p.id = ${placeholder.id}
      returning id, map_index`.execute(trx);
    for (const r of rest.rows) {
      // The placeholder's generation: after a clear it is past every job id the earlier
      // expansion used, so the new instances' jobs are not mistaken for the old, finished ones.
      instances.push({ ...placeholder, id: r.id, map_index: r.map_index, state: 'queued', try_number: 0, generation: placeholder.generation });
    }
  }
  return { instances };
}

function describeJson(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}

async function failInstance(trx: Trx, run: RunRef, ti: TiRef, task: TaskDef, error: Error): Promise<void> {
  const described = JSON.stringify(describeError(error));
  await trx.updateTable('task_instances').set({ state: 'failed', error: described, ended_at: sql`now()` }).where('id', '=', ti.id).execute();
  await trx
    .insertInto('dead_letters')
    .values({
      ti_id: ti.id,
      run_id: run.id,
      dag_id: run.dag_id,
      task_id: task.id,
      map_index: ti.map_index,
      tries: ti.try_number,
      error: described,
    })
    .execute();
}
