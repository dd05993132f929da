import type { TaskContext } from 'hubflow';
import { PermanentError } from '../core/errors.ts';

/**
 * A mapped instance's element of its upstream's results. With trigger `all_done` an upstream
 * instance that failed hands on null: this instance fails too, at once, naming where to look,
 * while the other elements go on.
 */
export function upstreamItem<T>(ctx: TaskContext<T | null>, what: string): T {
  if (ctx.item === null) throw new PermanentError(`${what} #${ctx.mapIndex} did not succeed, so there is nothing to take further; see that task instance`);
  return ctx.item;
}
