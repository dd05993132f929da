/**
 * hubflow's public API: what a DAG file imports.
 *
 * ```ts
 * import { defineDag, task } from 'hubflow';
 * export default defineDag({ id: 'hello', tasks: { say: task({ run: (ctx) => ctx.log.info('hi') }) } });
 * ```
 */
export { defineDag } from './server/engine/dag.ts';
export { task, TRIGGER_RULES } from './server/engine/task.ts';
export type { Dag, DagOptions, ScheduleOptions } from './server/engine/dag.ts';
export type {
  BranchOptions,
  BranchTarget,
  HandlesOf,
  ItemOf,
  ResultOf,
  RetryOptions,
  TaskContext,
  TaskDeclaration,
  TaskFn,
  TaskOptions,
  TaskRef,
  TriggerRule,
  Uses,
} from './server/engine/task.ts';
export type { Duration } from './server/engine/duration.ts';
export type { RejectFilter, RejectRecord, ReconciliationRecord, TaskRecords } from './server/engine/records.ts';
export type { Severity } from './server/store/schema.ts';
export type { CronSchedule } from './server/engine/timetable.ts';
export { defineResource } from './server/engine/resources.ts';
export type { BlackoutOptions, HandleOf, Resource, ResourceOptions, ResourceSettings } from './server/engine/resources.ts';
export { HubflowError, PermanentError, RetryableError, SkipTaskError, TaskCancelledError, TaskTimeoutError } from './core/errors.ts';
