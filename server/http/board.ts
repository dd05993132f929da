import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.ts';

export const BOARD_PATH = '/admin/queues';

/**
 * bull-board on the runtime's own task queue (no second Redis connection), behind the same auth.
 * Read-only (its own mode) unless HUBFLOW_BOARD_WRITABLE: a job retried, added or removed there
 * bypasses the store, so clearing, retrying and cancelling go through hubflow's API instead.
 */
export async function registerBoard(app: FastifyInstance, rt: Runtime): Promise<void> {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  createBullBoard({
    queues: [
      new BullMQAdapter(rt.engine.dispatcher.queue, {
        readOnlyMode: !rt.config.HUBFLOW_BOARD_WRITABLE,
        description:
          'hubflow task instances; job ids are <installation>.r<run>.<task>[.<map index>].g<generation>. To retry, clear or cancel, use the hubflow API (POST /api/runs/<id>/clear, /tasks/<task>/retry, /cancel)',
        externalJobUrl: (job) => {
          const runId = (job.data as { runId?: unknown } | undefined)?.runId;
          return typeof runId === 'number' ? { displayText: `run ${runId}`, href: `/runs/${runId}` } : { href: '/' };
        },
      }),
    ],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'hubflow' } },
  });
  await app.register(serverAdapter.registerPlugin(), { prefix: BOARD_PATH });
}

/** Where bull-board shows one job of the task queue. */
export function boardJobUrl(rt: Runtime, jobId: string): string {
  return `${BOARD_PATH}/queue/${encodeURIComponent(rt.engine.dispatcher.queue.name)}/${encodeURIComponent(jobId)}`;
}

export function boardQueueUrl(rt: Runtime): string {
  return `${BOARD_PATH}/queue/${encodeURIComponent(rt.engine.dispatcher.queue.name)}`;
}
