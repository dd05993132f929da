import { InvalidInputError } from '../../core/errors.ts';
import type { Dag, TaskDef } from './dag.ts';
import type { DagRegistry } from './loader.ts';
import { freeFrom, type Window } from './resources.ts';
import { deadlineFor, dueAt, windowFor } from './sla.ts';
import { resourcesOf } from './windows.ts';

/** A scheduled task start that falls inside a blackout of a resource the task uses. */
export interface Collision {
  dag: string;
  task: string;
  /** The resource and window that hold the start back (the last of a chain of windows). */
  resource: string;
  blackout: Window;
  /** When the run is due. */
  due: Date;
  /** When the task would start but for the blackout (its run due, its upstreams done). */
  earliest: Date;
  /** When the task can start instead. */
  deferredTo: Date;
  windowEnd: Date | undefined;
  deadline: Date | undefined;
  /** The deferral pushes the start past the DAG's start window, or past its deadline. */
  missesWindow: boolean;
  missesDeadline: boolean;
  timezone: string;
}

/** A scheduled run's due time in the period, for listings. */
export interface PlannedRun {
  dag: Dag;
  logicalDate: Date;
  due: Date;
}

/** More scheduled runs of one DAG than a listing or a windows check could show anyone. */
export const MAX_PLANNED_RUNS = 100_000;

/** Every scheduled run of every DAG due in [from, to); a DAG with more than MAX_PLANNED_RUNS in it is refused. */
export function plannedRuns(registry: DagRegistry, from: Date, to: Date): PlannedRun[] {
  const out: PlannedRun[] = [];
  for (const dag of registry.dags.values()) {
    const timetable = dag.timetable;
    if (!timetable) continue;
    // A run is due at its interval's end: start one interval early to catch those due in range.
    const first = timetable.prev(from) ?? from;
    const starts = timetable.between(first, to, MAX_PLANNED_RUNS);
    if (starts.length > MAX_PLANNED_RUNS) {
      throw new InvalidInputError(
        `DAG '${dag.id}' has more than ${MAX_PLANNED_RUNS.toLocaleString('en')} scheduled runs from ${from.toISOString()} to ${to.toISOString()}: check a shorter period`,
      );
    }
    for (const start of starts) {
      const end = timetable.next(start);
      if (!end) continue;
      const due = dueAt(dag, start, end);
      if (due >= from && due < to) out.push({ dag, logicalDate: start, due });
    }
  }
  return out.sort((a, b) => a.due.getTime() - b.due.getTime());
}

/**
 * Checks every scheduled run in [from, to) against every blackout of every resource its tasks
 * use, before anything runs.
 */
export function findCollisions(registry: DagRegistry, from: Date, to: Date): Collision[] {
  const collisions: Collision[] = [];
  for (const { dag, logicalDate, due } of plannedRuns(registry, from, to)) {
    for (const start of taskStarts(registry, dag, due)) {
      if (start.held) collisions.push(collision(dag, logicalDate, due, { ...start, held: start.held }));
    }
  }
  return collisions;
}

export interface TaskStart {
  task: TaskDef;
  /** When its upstreams would let it start. */
  earliest: Date;
  /** When its resources let it start. */
  at: Date;
  held: (Window & { resource: string }) | null;
}

/**
 * When each task of a run due at `due` can start, upstreams first: a task starts no earlier
 * than its run and its upstreams (taken to take no time, so this is a lower bound), and no
 * earlier than the end of any blackout of a resource it uses. A deferral carries downstream.
 */
export function taskStarts(registry: DagRegistry, dag: Dag, due: Date): TaskStart[] {
  const starts = new Map<string, TaskStart>();
  for (const task of dag.tasks.values()) {
    const earliest = new Date(Math.max(due.getTime(), ...task.upstream.map((u) => starts.get(u)!.at.getTime())));
    const { at, held } = freeFrom(resourcesOf(registry, task), earliest);
    starts.set(task.id, { task, earliest, at, held });
  }
  return [...starts.values()];
}

function collision(dag: Dag, logicalDate: Date, due: Date, start: TaskStart & { held: Window & { resource: string } }): Collision {
  // The start window is the one the run was due in, however long its tasks wait.
  const windowEnd = windowFor(dag, due)?.end;
  const deadline = deadlineFor(dag, logicalDate);
  return {
    dag: dag.id,
    task: start.task.id,
    resource: start.held.resource,
    blackout: { start: start.held.start, end: start.held.end, reason: start.held.reason },
    due,
    earliest: start.earliest,
    deferredTo: start.at,
    windowEnd,
    deadline,
    missesWindow: windowEnd !== undefined && start.at > windowEnd,
    missesDeadline: deadline !== undefined && start.at > deadline,
    timezone: dag.schedule?.timezone ?? 'UTC',
  };
}
