/**
 * hubflow's public API: what a DAG file imports.
 *
 * ```ts
 * import { defineDag, task } from 'hubflow';
 * export default defineDag({ id: 'hello', tasks: { say: task({ run: (ctx) => ctx.log.info('hi') }) } });
 * ```
 */
export { defineDag, task, TRIGGER_RULES } from './server/engine/dag.ts';
export type { Dag, DagOptions, ScheduleOptions, TaskContext, TaskFn, TaskOptions, TriggerRule } from './server/engine/dag.ts';
export type { RetryPolicy } from './server/engine/retry.ts';
export type { CronSchedule } from './server/engine/timetable.ts';
export { defineResource } from './server/engine/resources.ts';
export type { BlackoutOptions, Resource, ResourceOptions } from './server/engine/resources.ts';
export { HubflowError, PermanentError, RetryableError, SkipTaskError, TaskCancelledError, TaskTimeoutError } from './core/errors.ts';
