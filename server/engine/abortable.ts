import { RetryableError, TaskTimeoutError } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { nextBlackoutStart, type Resource } from './resources.ts';

/**
 * Runs the task until it settles or its controller aborts (timeout, blackout, shutdown): then
 * the try fails with the abort's reason, whether or not the task listens to its signal.
 */
export async function runAbortable<T>(controller: AbortController, timeoutMs: number | undefined, fn: () => T): Promise<Awaited<T>> {
  const timer = timeoutMs ? setTimeout(() => controller.abort(new TaskTimeoutError(`timed out after ${timeoutMs} ms`)), timeoutMs) : undefined;
  let onAbort: (() => void) | undefined;
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(controller.signal.reason);
    if (controller.signal.aborted) onAbort();
    else controller.signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([Promise.resolve().then(fn), aborted]);
  } finally {
    clearTimeout(timer);
    controller.signal.removeEventListener('abort', onAbort!);
  }
}

/** For resources with onBlackout 'cancel': aborts the task when the next blackout begins. */
export function cancelAtBlackout(resources: readonly Resource[], controller: AbortController, log: Logger): NodeJS.Timeout | undefined {
  const window = nextBlackoutStart(
    resources.filter((r) => r.onBlackout === 'cancel'),
    new Date(),
  );
  if (!window) return undefined;
  const timer = setTimeout(() => {
    log.warn({ event: 'task_cancelled', resource: window.resource, reason: window.reason }, `cancelled: ${window.resource} enters blackout (${window.reason})`);
    controller.abort(new RetryableError(`cancelled: ${window.resource} entered a blackout (${window.reason}) while the task ran`));
  }, window.start.getTime() - Date.now());
  timer.unref();
  return timer;
}
