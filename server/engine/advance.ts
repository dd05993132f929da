import { sql, type Transaction } from 'kysely';
import { describeError } from '../errors.ts';
import type { DagRunRow, StoreSchema, TiState } from '../store/schema.ts';
import { TERMINAL_TI_STATES } from '../store/schema.ts';
import type { Dag, TaskDef } from './dag.ts';
import { decide } from './trigger-rules.ts';

type Trx = Transaction<StoreSchema>;

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
 * Moves a run forward inside the caller's transaction, which must hold the run's row lock:
 * evaluates the candidate tasks (and, transitively, whatever their resolution unblocks) against
 * their trigger rules, queues the ready ones (expanding mapped tasks), resolves the ones that
 * can no longer run, and finishes the run when nothing is left to do.
 */
export async function advanceRun(
  trx: Trx,
  run: DagRunRow,
  dag: Dag,
  candidates: Iterable<string>,
  /** The run's task instances as of now, when the caller has them already (saves a round trip). */
  known?: TiRef[],
): Promise<AdvanceResult> {
  const rows =
    known ??
    (await trx
      .selectFrom('task_instances')
      .select(['id', 'task_id', 'map_index', 'state', 'try_number', 'max_tries', 'generation'])
      .where('run_id', '=', run.id)
      .execute());
  const byTask = new Map<string, TiRef[]>();
  for (const r of rows) {
    const list = byTask.get(r.task_id) ?? [];
    list.push(r);
    byTask.set(r.task_id, list);
  }

  const order = [...dag.tasks.keys()];
  const rank = new Map(order.map((id, i) => [id, i]));
  const pending = new Set<string>();
  const enqueueCandidate = (id: string) => pending.add(id);
  for (const id of candidates) enqueueCandidate(id);

  const result: AdvanceResult = { dispatch: [], failed: [] };
  const resolved: { id: number; state: TiState }[] = [];
  const toQueue: TiRef[] = [];
  // Instances made by expansion are inserted as queued already.
  const expanded: TiRef[] = [];

  while (pending.size) {
    // Lowest topological rank first, so a task is judged after every upstream it has.
    const next = [...pending].reduce((a, b) => (rank.get(a)! <= rank.get(b)! ? a : b));
    pending.delete(next);
    const task = dag.tasks.get(next)!;
    const instances = byTask.get(next) ?? [];
    if (!instances.length || instances.some((i) => i.state !== 'scheduled')) continue;
    const upstreamStates = task.upstream.flatMap((u) => (byTask.get(u) ?? []).map((i) => i.state));
    const decision = decide(task.trigger, upstreamStates);
    if (decision === 'wait') continue;
    if (decision === 'ready' && task.map) {
      const expansion = await expandMapped(trx, run, task, instances[0]!, byTask);
      if ('error' in expansion) {
        instances[0]!.state = 'failed';
        result.failed.push({ tiId: instances[0]!.id, taskId: task.id, error: expansion.error });
        await failInstance(trx, run, instances[0]!, task, expansion.error);
        task.downstream.forEach(enqueueCandidate);
      } else if (expansion.instances.length === 0) {
        instances[0]!.state = 'skipped';
        resolved.push({ id: instances[0]!.id, state: 'skipped' });
        task.downstream.forEach(enqueueCandidate);
      } else {
        byTask.set(task.id, expansion.instances);
        expanded.push(...expansion.instances);
      }
      continue;
    }
    if (decision === 'ready') {
      for (const i of instances) i.state = 'queued';
      toQueue.push(...instances);
      continue;
    }
    for (const i of instances) {
      i.state = decision;
      resolved.push({ id: i.id, state: decision });
    }
    task.downstream.forEach(enqueueCandidate);
  }

  const all = [...byTask.values()].flat();
  const finished = run.state === 'running' && all.every((i) => TERMINAL_TI_STATES.has(i.state));
  const runState = all.some((i) => i.state === 'failed' || i.state === 'upstream_failed') ? 'failed' : 'success';
  if (resolved.length || toQueue.length || finished) {
    // One statement for every write, so advancing costs one round trip whatever it decided.
    await sql`
      with resolved as (
        update task_instances ti set state = v.state, ended_at = now()
        from unnest(${resolved.map((r) => r.id)}::bigint[], ${resolved.map((r) => r.state)}::text[]) as v(id, state)
        where ti.id = v.id
      ), queued as (
        update task_instances set state = 'queued', ready_at = now() where id = any(${toQueue.map((i) => i.id)}::bigint[])
      )
      update dag_runs set state = ${runState}, ended_at = now() where id = ${run.id} and ${finished}::boolean`.execute(trx);
  }
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

async function expandMapped(
  trx: Trx,
  run: DagRunRow,
  task: TaskDef,
  placeholder: TiRef,
  byTask: Map<string, TiRef[]>,
): Promise<{ instances: TiRef[] } | { error: Error }> {
  const source = task.map!;
  const sourceRows = await trx
    .selectFrom('task_instances')
    .select(['map_index', 'result'])
    .where('run_id', '=', run.id)
    .where('task_id', '=', source)
    .orderBy('map_index')
    .execute();
  const mappedSource = (byTask.get(source) ?? []).some((i) => i.map_index >= 0);
  const list = mappedSource ? sourceRows.map((r) => r.result) : sourceRows[0]?.result;
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
      insert into task_instances (run_id, dag_id, task_id, map_index, state, max_tries, map_item, ready_at)
      select ${run.id}, ${run.dag_id}, ${task.id}, m.idx, 'queued', ${placeholder.max_tries}, m.item, now()
      from unnest(${items.slice(1)}::jsonb[]) with ordinality as m(item, idx)
      returning id, map_index`.execute(trx);
    for (const r of rest.rows) {
      instances.push({ ...placeholder, id: r.id, map_index: r.map_index, state: 'queued', try_number: 0, generation: 0 });
    }
  }
  return { instances };
}

function describeJson(value: unknown): string {
  if (value === null || value === undefined) return 'nothing';
  return Array.isArray(value) ? 'a list' : `a ${typeof value}`;
}

async function failInstance(trx: Trx, run: DagRunRow, ti: TiRef, task: TaskDef, error: Error): Promise<void> {
  const described = JSON.stringify(describeError(error));
  await trx
    .updateTable('task_instances')
    .set({ state: 'failed', error: described, ended_at: sql`now()` })
    .where('id', '=', ti.id)
    .execute();
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
