import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { type Actor, cancel, clear, listDeadLetters, markRun, markTask, replayDeadLetters, setPaused, trigger } from '../engine/actions.ts';
import type { Runtime } from '../runtime.ts';
import { RUN_TYPES } from '../store/schema.ts';
import { parseRunId } from './api.ts';
import { requestAccess } from './auth.ts';
import { sendError, zodIssues } from './errors.ts';

/*
 * The API's state-changing routes: each is one call of the operator actions (engine/actions.ts),
 * which the CLI and the page buttons use too. guard.ts stands before all of them (an operator,
 * same-origin, JSON), and auth.ts before that.
 */

const reason = z.string().trim().min(1).max(500).optional();

const triggerBody = z
  .object({
    // A bare date is midnight UTC; a date-time needs its offset, the server's time zone being no one's business.
    logicalDate: z.union([z.iso.datetime({ offset: true }), z.iso.date()]).optional(),
    conf: z.record(z.string(), z.unknown()).optional(),
    reason,
  })
  .strict();
const taskList = z.array(z.string().min(1)).min(1).max(1000);
const clearBody = z.object({ tasks: taskList.optional(), downstream: z.boolean().optional(), failedOnly: z.boolean().optional(), reason }).strict();
const reasonBody = z.object({ reason }).strict();
const cancelManyBody = reasonBody.extend({ state: z.enum(['queued', 'running']).optional(), runType: z.enum(RUN_TYPES).optional() }).strict();
const markState = z.enum(['success', 'failed']);
const markTaskBody = z.object({ state: markState, map: z.number().int().min(0).optional(), reason }).strict();
const markRunBody = z.object({ state: markState, reason }).strict();
const replayBody = z
  .object({
    ids: z.array(z.number().int().positive()).min(1).max(10_000).optional(),
    dag: z.string().min(1).optional(),
    task: z.string().min(1).optional(),
    reason,
  })
  .strict()
  .refine((b) => (b.ids === undefined) !== (b.dag === undefined), { message: 'give either ids, or dag (and task)' })
  .refine((b) => b.task === undefined || b.dag !== undefined, { message: 'task needs its dag', path: ['task'] });
const deadLettersQuery = z.object({
  dag: z.string().min(1).optional(),
  task: z.string().min(1).optional(),
  status: z.enum(['open', 'resolved', 'all']).default('open'),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
});

/** Who is acting, as the log records it: how the request authenticated, and from where. */
export function actorOf(request: FastifyRequest, why?: string): Actor {
  const via = requestAccess(request).via;
  const how = via === 'open' ? 'loopback, no token' : via === 'cookie' ? 'page' : 'token';
  return { by: `http (${how}) from ${request.ip}`, reason: why };
}

type Parsed<T> = { ok: true; data: T } | { ok: false; sent: FastifyReply };

/** The body validated (absent: no options), or the 400 already sent. */
function body<T>(schema: z.ZodType<T>, request: FastifyRequest, reply: FastifyReply): Parsed<T> {
  const parsed = schema.safeParse(request.body ?? {});
  if (parsed.success) return { ok: true, data: parsed.data };
  return { ok: false, sent: sendError(reply, 400, 'invalid body', zodIssues(parsed.error)) };
}

function runParam(request: FastifyRequest<{ Params: { id: string } }>, reply: FastifyReply): number | FastifyReply {
  const id = parseRunId(request.params.id);
  return id ?? sendError(reply, 400, `run id must be a positive integer, not '${request.params.id}'`);
}

export function registerActionRoutes(app: FastifyInstance, rt: Runtime): void {
  const engine = rt.engine;

  app.post<{ Params: { id: string } }>('/api/dags/:id/runs', async (request, reply) => {
    const b = body(triggerBody, request, reply);
    if (!b.ok) return b.sent;
    const { logicalDate, conf } = b.data;
    // NotFoundError (unknown DAG) and ConflictError (date taken) become 404 and 409 in the error handler.
    const run = await trigger(
      engine,
      request.params.id,
      { logicalDate: logicalDate ? new Date(logicalDate) : undefined, conf },
      actorOf(request, b.data.reason),
    );
    return reply.code(201).send(run);
  });

  for (const [name, paused] of [
    ['pause', true],
    ['unpause', false],
  ] as const) {
    app.post<{ Params: { id: string } }>(`/api/dags/:id/${name}`, async (request, reply) => {
      const b = body(reasonBody, request, reply);
      if (!b.ok) return b.sent;
      return setPaused(engine, request.params.id, paused, actorOf(request, b.data.reason));
    });
  }

  app.post<{ Params: { id: string } }>('/api/runs/:id/cancel', async (request, reply) => {
    const id = runParam(request, reply);
    if (typeof id !== 'number') return id;
    const b = body(reasonBody, request, reply);
    if (!b.ok) return b.sent;
    // An unknown run is a 404, one that has already ended a 409 (the error handler maps them).
    const [run] = await cancel(engine, { runIds: [id] }, actorOf(request, b.data.reason));
    return run ?? sendError(reply, 409, `run ${id} has already ended`);
  });

  app.post<{ Params: { id: string } }>('/api/dags/:id/runs/cancel', async (request, reply) => {
    const b = body(cancelManyBody, request, reply);
    if (!b.ok) return b.sent;
    engine.dag(request.params.id);
    const { state, runType } = b.data;
    return { cancelled: await cancel(engine, { dagId: request.params.id, state, runType }, actorOf(request, b.data.reason)) };
  });

  // Airflow's clear: the failed (or named) tasks and, unless told not to, everything downstream run again.
  app.post<{ Params: { id: string } }>('/api/runs/:id/clear', async (request, reply) => {
    const id = runParam(request, reply);
    if (typeof id !== 'number') return id;
    const b = body(clearBody, request, reply);
    if (!b.ok) return b.sent;
    const { tasks, downstream, failedOnly } = b.data;
    return clear(engine, id, { tasks, downstream, failedOnly }, actorOf(request, b.data.reason));
  });

  // A failed task tried again: a clear of that task (and its downstream), so the store stays the truth.
  app.post<{ Params: { id: string; task: string } }>('/api/runs/:id/tasks/:task/retry', async (request, reply) => {
    const id = runParam(request, reply);
    if (typeof id !== 'number') return id;
    const b = body(reasonBody, request, reply);
    if (!b.ok) return b.sent;
    const { task } = request.params;
    const states = await rt.db.selectFrom('task_instances').select('state').where('run_id', '=', id).where('task_id', '=', task).execute();
    // The engine says 404 for an unknown run or task; a known task that has not failed is a 409.
    if (states.length && !states.some((s) => s.state === 'failed')) {
      return sendError(reply, 409, `task '${task}' of run ${id} has not failed (it is ${states[0]!.state}); POST /api/runs/${id}/clear to run it again anyway`);
    }
    return clear(engine, id, { tasks: [task] }, actorOf(request, b.data.reason));
  });

  app.post<{ Params: { id: string; task: string } }>('/api/runs/:id/tasks/:task/mark', async (request, reply) => {
    const id = runParam(request, reply);
    if (typeof id !== 'number') return id;
    const b = body(markTaskBody, request, reply);
    if (!b.ok) return b.sent;
    return markTask(engine, id, request.params.task, { state: b.data.state, mapIndex: b.data.map, actor: actorOf(request, b.data.reason) });
  });

  app.post<{ Params: { id: string } }>('/api/runs/:id/mark', async (request, reply) => {
    const id = runParam(request, reply);
    if (typeof id !== 'number') return id;
    const b = body(markRunBody, request, reply);
    if (!b.ok) return b.sent;
    return markRun(engine, id, { state: b.data.state, actor: actorOf(request, b.data.reason) });
  });

  app.get('/api/dead-letters', async (request, reply) => {
    const query = deadLettersQuery.safeParse(request.query);
    if (!query.success) return sendError(reply, 400, 'invalid query', zodIssues(query.error));
    const { dag, task, status, limit } = query.data;
    return { deadLetters: await listDeadLetters(rt.db, { dagId: dag, taskId: task, status, limit }) };
  });

  app.post('/api/dead-letters/replay', async (request, reply) => {
    const b = body(replayBody, request, reply);
    if (!b.ok) return b.sent;
    const { ids, dag, task } = b.data;
    return replayDeadLetters(engine, { ids, dagId: dag, taskId: task }, actorOf(request, b.data.reason));
  });
}
