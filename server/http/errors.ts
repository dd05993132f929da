import { STATUS_CODES } from 'node:http';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { z } from 'zod';
import type { Logger } from '../../core/log.ts';

export interface ErrorBody {
  statusCode: number;
  error: string;
  message: string;
  issues?: { path: string; message: string }[];
}

/** Fastify's own error shape, so a client sees one format whatever answered. */
export function sendError(reply: FastifyReply, statusCode: number, message: string, issues?: ErrorBody['issues']): FastifyReply {
  const body: ErrorBody = { statusCode, error: STATUS_CODES[statusCode] ?? 'Error', message };
  if (issues) body.issues = issues;
  return reply.code(statusCode).type('application/json; charset=utf-8').send(body);
}

export function zodIssues(error: z.ZodError): NonNullable<ErrorBody['issues']> {
  return error.issues.map((i) => ({ path: i.path.map(String).join('.') || '(root)', message: i.message }));
}

// By name, not instanceof: errors.ts explains that an error may come from another copy of the module.
const STATUS_BY_NAME: Record<string, number> = { NotFoundError: 404, ConflictError: 409, InvalidInputError: 400 };

export function installErrorHandler(app: FastifyInstance, log: Logger): void {
  app.setErrorHandler((err: unknown, request, reply) => {
    const name = err instanceof Error ? err.name : '';
    const message = err instanceof Error ? err.message : String(err);
    const mapped = STATUS_BY_NAME[name];
    if (mapped) return sendError(reply, mapped, message);
    const status = (err as { statusCode?: unknown } | null)?.statusCode;
    // Fastify's own client errors (a body that is not JSON, one too large) keep their status and say why.
    if (typeof status === 'number' && status >= 400 && status < 500) return sendError(reply, status, message);
    log.error({ err, method: request.method, route: request.routeOptions.url }, 'request failed');
    return sendError(reply, 500, 'internal error; see the server log');
  });
}
