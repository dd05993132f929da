import { UnrecoverableError, type Job } from 'bullmq';
import type { Store } from '../store/db.ts';
import type { Dag, TaskDef } from './dag.ts';
import type { JobRef } from './dispatch.ts';
import type { DagRegistry } from './loader.ts';
import { resourcesOf, taskOf } from './windows.ts';

/*
 * A job is only a pointer to a task instance: anyone who can write to the queue (bull-board,
 * a script) can add one. What runs is the task the store's row names; the job's own DAG and
 * task ids are a hint, used to check blackouts and pools before the row is claimed, and a job
 * that points nowhere fails once, saying why, instead of coming back forever.
 */

/** What a job asks for: the instance and the generation it was made for; the task ids only as a hint. */
export interface JobOrder {
  tiId: number;
  generation: number;
  dagId: string | undefined;
  taskId: string | undefined;
  runId: number | undefined;
  mapIndex: number | undefined;
  /** How often workers that do not know the task have handed the job back (executor.ts, #fromStore). */
  handedBack: number;
}

export type Found = { dag: Dag; task: TaskDef };

/** The instance as the store has it, for a job that must be checked against it. */
export interface InstanceRow {
  dag_id: string;
  task_id: string;
  generation: number;
  state: string;
}

/** A job that cannot be run, failed at once: BullMQ does not try it again. */
export function badJob(job: Job, problem: string): UnrecoverableError {
  return new UnrecoverableError(`job ${job.id ?? '(no id)'}: ${problem}`);
}

/** Reads a job's order; a job not made the way hubflow makes them fails once, naming the field. */
export function readJob(job: Job<unknown>): JobOrder {
  const data = job.data;
  if (typeof data !== 'object' || data === null) throw badJob(job, `its data is not an object but ${show(data)}`);
  const { tiId, generation, dagId, taskId, runId, mapIndex, handedBack } = data as Record<string, unknown>;
  if (!isCount(tiId) || tiId === 0) throw badJob(job, `tiId must be a task instance id (a positive integer), not ${show(tiId)}`);
  if (!isCount(generation)) throw badJob(job, `generation must be a whole number, not ${show(generation)}`);
  return {
    tiId,
    generation,
    dagId: typeof dagId === 'string' ? dagId : undefined,
    taskId: typeof taskId === 'string' ? taskId : undefined,
    runId: isCount(runId) ? runId : undefined,
    mapIndex: Number.isSafeInteger(mapIndex) ? (mapIndex as number) : undefined,
    handedBack: isCount(handedBack) ? handedBack : 0,
  };
}

/**
 * Fails a job whose id is not the one hubflow gives the job its data describe. Ids are
 * deterministic and BullMQ keeps one job per id, so a job added by hand cannot stand beside the
 * real job of an instance, or start a second try of it while the first runs.
 */
export function checkId(job: Job, order: JobOrder, jobId: (ref: JobRef) => string): void {
  const { runId, taskId, mapIndex, generation } = order;
  if (runId === undefined || taskId === undefined || mapIndex === undefined) {
    throw badJob(job, 'its data do not name the run (runId), task (taskId) and map index (mapIndex) of a task instance');
  }
  // Everything the data say, so an id that comes to name the instance itself checks that too.
  const ref = { tiId: order.tiId, runId, taskId, mapIndex, generation };
  const expected = jobId(ref);
  if (job.id !== expected) throw badJob(job, `hubflow gives the job its data describe the id ${expected}: this one was not made by hubflow`);
}

/** The loaded task the job's own ids name, if any: a hint until the claimed row confirms it. */
export function hintedTask(registry: DagRegistry, order: JobOrder): Found | undefined {
  return order.dagId === undefined || order.taskId === undefined ? undefined : taskOf(registry, order.dagId, order.taskId);
}

export async function instanceRow(db: Store, tiId: number): Promise<InstanceRow | undefined> {
  return db.selectFrom('task_instances').select(['dag_id', 'task_id', 'generation', 'state']).where('id', '=', tiId).executeTakeFirst();
}

/** Fails a job whose instance is not in the store, or was made for another generation of it. */
export function checkAgainst(job: Job, order: JobOrder, row: InstanceRow | undefined): InstanceRow {
  if (!row) throw badJob(job, `task instance ${order.tiId} is not in the store`);
  if (row.generation !== order.generation) {
    throw badJob(
      job,
      `made for generation ${order.generation} of task instance ${order.tiId} (task '${row.task_id}' of DAG '${row.dag_id}'), which is at generation ${row.generation}: the instance was cleared or given a new job since`,
    );
  }
  return row;
}

/** Whether two tasks wait on the same resources, so the checks made for one hold for the other. */
export function sameResources(registry: DagRegistry, a: TaskDef, b: TaskDef): boolean {
  const ids = (t: TaskDef) =>
    resourcesOf(registry, t)
      .map((r) => r.id)
      .sort()
      .join('\n');
  return a.slots === b.slots && ids(a) === ids(b);
}

/** "task 'load' of DAG 'nightly'", with the run and map index when they are known. */
export function describeTask(dagId: string | undefined, taskId: string | undefined, runId?: number, mapIndex?: number): string {
  const mapped = mapIndex !== undefined && mapIndex >= 0 ? ` [${mapIndex}]` : '';
  const run = runId !== undefined ? ` in run ${runId}` : '';
  return `task '${taskId ?? '?'}'${mapped} of DAG '${dagId ?? '?'}'${run}`;
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function show(value: unknown): string {
  const text = JSON.stringify(value);
  return text === undefined ? String(value) : text.length > 60 ? `${text.slice(0, 60)}…` : text;
}
