import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Runtime } from '../runtime.ts';
import { RUN_STATES } from '../store/schema.ts';
import { sendError, zodIssues } from './errors.ts';
import { getRunDetail, listDags, listRuns } from './queries.ts';

export const DEFAULT_RUN_LIMIT = 50;
export const MAX_RUN_LIMIT = 500;
export const DEFAULT_INSTANCE_LIMIT = 1000;
export const MAX_INSTANCE_LIMIT = 10_000;

const runsQuery = z.object({
  dag: z.string().min(1).optional(),
  state: z.enum(RUN_STATES).optional(),
  before: z.coerce.number().int().min(1).optional(),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_RUN_LIMIT)
    .transform((n) => Math.min(n, MAX_RUN_LIMIT)),
});

/** Which page of a run's task instances: `offset` into them in DAG order, `limit` per page. */
export const instancePageQuery = z.object({
  offset: z.coerce.number().int().min(0).default(0),
  limit: z.coerce
    .number()
    .int()
    .min(1)
    .default(DEFAULT_INSTANCE_LIMIT)
    .transform((n) => Math.min(n, MAX_INSTANCE_LIMIT)),
});

/** A run id from the URL; undefined when it is not a positive integer. */
export function parseRunId(raw: string): number | undefined {
  if (!/^\d{1,15}$/.test(raw)) return undefined;
  const id = Number(raw);
  return id > 0 ? id : undefined;
}

/** The tasks of a DAG in the order it lists them (empty when the DAG is no longer loaded). */
export function taskOrder(rt: Runtime): (dagId: string) => string[] {
  return (dagId) => [...(rt.dags.dags.get(dagId)?.tasks.keys() ?? [])];
}

export function registerApi(app: FastifyInstance, rt: Runtime): void {
  app.get('/api/dags', async () => listDags(rt));

  app.get('/api/runs', async (request, reply) => {
    const query = runsQuery.safeParse(request.query);
    if (!query.success) return sendError(reply, 400, 'invalid query', zodIssues(query.error));
    return { runs: await listRuns(rt.db, query.data) };
  });

  app.get<{ Params: { id: string } }>('/api/runs/:id', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
    const page = instancePageQuery.safeParse(request.query);
    if (!page.success) return sendError(reply, 400, 'invalid query', zodIssues(page.error));
    const detail = await getRunDetail(rt.db, id, (ref) => rt.engine.dispatcher.jobId(ref), { ...page.data, taskOrder: taskOrder(rt) });
    if (!detail) return sendError(reply, 404, `no run ${id}`);
    return detail;
  });
}
