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
// InvalidInputError: input the engine refuses (a conf too deep, holding \u0000 or a lone surrogate).
const STATUS_BY_NAME: Record<string, number> = { NotFoundError: 404, ConflictError: 409, InvalidInputError: 400 };

/** Deeper than any real request body; a deeper one is an attack on whatever walks it next (JSON.stringify, PostgreSQL). */
export const MAX_BODY_DEPTH = 64;

/** How deeply a parsed JSON value nests, counted without recursion, stopping once past `limit`. */
function depthExceeds(value: unknown, limit: number): boolean {
  let level: unknown[] = [value];
  for (let depth = 0; level.length; depth++) {
    if (depth > limit) return true;
    const next: unknown[] = [];
    for (const v of level) {
      // One by one: spreading a 500,000-element array into push() would overflow the stack itself.
      if (v !== null && typeof v === 'object') for (const child of Object.values(v)) next.push(child);
    }
    level = next;
  }
  return false;
}

class BodyTooDeepError extends Error {
  readonly statusCode = 400;
}

/** Fastify's own JSON parser (prototype-poisoning checks and all) that also refuses a body nested past MAX_BODY_DEPTH. */
export function installJsonParser(app: FastifyInstance): void {
  const parse = app.getDefaultJsonParser('error', 'error');
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // An empty JSON body is "no options", as curl -X POST -H 'content-type: application/json' sends it.
    if (!String(body).trim()) return done(null, undefined);
    parse(request, String(body), (err: Error | null, value?: unknown) => {
      if (err) return done(err, undefined);
      if (depthExceeds(value, MAX_BODY_DEPTH)) return done(new BodyTooDeepError(`the request body nests deeper than ${MAX_BODY_DEPTH} levels`), undefined);
      done(null, value);
    });
  });
}

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
