import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import type { Runtime } from '../runtime.ts';
import { RUN_STATES, RUN_TYPES } from '../store/schema.ts';
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

const triggerBody = z
  .object({
    // A bare date is midnight UTC; a date-time needs its offset, the server's time zone being no one's business.
    logicalDate: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional(),
    conf: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

const clearBody = z.object({ tasks: z.array(z.string().min(1)).min(1).max(1000).optional() }).strict();
const emptyBody = z.object({}).strict();
const cancelBody = z.object({ reason: z.string().trim().min(1).max(500).optional() }).strict();
const cancelManyBody = cancelBody.extend({ state: z.enum(['queued', 'running']).optional(), runType: z.enum(RUN_TYPES).optional() }).strict();

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

  app.post<{ Params: { id: string } }>('/api/dags/:id/runs', async (request, reply) => {
    // No body at all is a plain "run it now".
    const body = triggerBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'invalid body', zodIssues(body.error));
    const { logicalDate, conf } = body.data;
    // NotFoundError (unknown DAG) and ConflictError (date taken) become 404 and 409 in the error handler.
    const run = await rt.engine.triggerRun(request.params.id, { logicalDate: logicalDate ? new Date(logicalDate) : undefined, conf });
    return reply.code(201).send(run);
  });

  app.post<{ Params: { id: string } }>('/api/runs/:id/cancel', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
    const body = cancelBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'invalid body', zodIssues(body.error));
    // An unknown run is a 404, one that has already ended a 409 (the error handler maps them).
    const [run] = await rt.engine.cancelRuns({ runIds: [id], reason: body.data.reason ?? 'cancelled through the API' });
    return run ?? sendError(reply, 409, `run ${id} has already ended`);
  });

  app.post<{ Params: { id: string } }>('/api/dags/:id/runs/cancel', async (request, reply) => {
    const body = cancelManyBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'invalid body', zodIssues(body.error));
    rt.engine.dag(request.params.id);
    const { state, runType, reason } = body.data;
    return { cancelled: await rt.engine.cancelRuns({ dagId: request.params.id, state, runType, reason: reason ?? 'cancelled through the API' }) };
  });

  // Airflow's clear: the failed (or named) tasks and everything downstream run again; the store records it.
  app.post<{ Params: { id: string } }>('/api/runs/:id/clear', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
    const body = clearBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'invalid body', zodIssues(body.error));
    return rt.engine.clear(id, { tasks: body.data.tasks });
  });

  // A failed task tried again: a clear of that task (and its downstream), so the store stays the truth.
  app.post<{ Params: { id: string; task: string } }>('/api/runs/:id/tasks/:task/retry', async (request, reply) => {
    const id = parseRunId(request.params.id);
    if (id === undefined) return sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
    const body = emptyBody.safeParse(request.body ?? {});
    if (!body.success) return sendError(reply, 400, 'invalid body', zodIssues(body.error));
    const { task } = request.params;
    const failed = await rt.db
      .selectFrom('task_instances')
      .select('id')
      .where('run_id', '=', id)
      .where('task_id', '=', task)
      .where('state', '=', 'failed')
      .executeTakeFirst();
    if (!failed) {
      // The engine says 404 for an unknown run or task; a known task that has not failed is a 409.
      const known = await rt.db.selectFrom('task_instances').select('state').where('run_id', '=', id).where('task_id', '=', task).executeTakeFirst();
      if (known)
        return sendError(reply, 409, `task '${task}' of run ${id} has not failed (it is ${known.state}); POST /api/runs/${id}/clear to run it again anyway`);
    }
    return rt.engine.clear(id, { tasks: [task] });
  });
}
