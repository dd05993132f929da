import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { isLoopbackHost, requestAccess } from './auth.ts';
import { BOARD_PATH } from './board.ts';
import { sendError } from './errors.ts';
import { LOGIN_PATH } from './login.ts';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Host header → name and port (80 when absent, as a browser omits it). Undefined when it is no host. */
function splitHost(header: string | undefined): { name: string; port: number } | undefined {
  const match = /^(\[[0-9a-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/i.exec(header?.trim() ?? '');
  if (!match) return undefined;
  return { name: match[1]!, port: match[2] ? Number(match[2]) : 80 };
}

/** The port the server listens on; undefined for a request injected in-process, which came through no port. */
function listeningPort(app: FastifyInstance): number | undefined {
  const address = app.server.listening ? app.server.address() : null;
  return typeof address === 'object' && address ? address.port : undefined;
}

/**
 * Without a token, a page another site serves could reach the server through DNS rebinding
 * (its own name resolving to 127.0.0.1): only a loopback name with the port we listen on is
 * answered, so such a page never reads or acts.
 */
function hostProblem(app: FastifyInstance, request: FastifyRequest): string | undefined {
  const host = splitHost(request.headers.host);
  const port = listeningPort(app);
  if (host && isLoopbackHost(host.name) && (port === undefined || host.port === port)) return undefined;
  return `this server answers only to 127.0.0.1, localhost or [::1]${port === undefined ? '' : ` on port ${port}`} (it has no HUBFLOW_API_TOKEN), not to Host '${request.headers.host ?? ''}'`;
}

const isJson = (contentType: string | undefined) => /^application\/json\s*(;|$)/i.test(contentType ?? '');

/** Whether the request says it comes from another site: a foreign Origin, or Sec-Fetch-Site other than same-origin / none. */
function crossOrigin(request: FastifyRequest): string | undefined {
  const origin = request.headers.origin;
  const own = `${request.protocol}://${request.host}`.toLowerCase();
  if (origin !== undefined && origin.toLowerCase() !== own) {
    const schemeOnly = origin.toLowerCase().replace(/^https:/, 'http:') === own;
    return `Origin '${origin}' is not this server's (${own})${schemeOnly ? '; behind a TLS-terminating proxy, set HUBFLOW_TRUST_PROXY' : ''}`;
  }
  const site = request.headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return `Sec-Fetch-Site is '${site}'`;
  return undefined;
}

/** bull-board's own buttons send no body, so when its actions are enabled they are held to a same-origin Origin instead. */
const isBoardAction = (request: FastifyRequest, boardWritable: boolean) => boardWritable && (request.routeOptions.url ?? '').startsWith(`${BOARD_PATH}/api/`);

/**
 * The login form is a form post, not JSON, and carries no token yet: it is held to an Origin
 * naming this server instead (every browser sends one with a POST), so no other site can post
 * it. It changes nothing but the cookie, and only for a right token.
 */
function loginProblem(request: FastifyRequest): [number, string] | undefined {
  const foreign = crossOrigin(request);
  if (foreign) return [403, `refusing a cross-site login: ${foreign}`];
  if (request.headers.origin === undefined) return [403, 'the login form needs an Origin header naming this server'];
  return undefined;
}

function actionProblem(request: FastifyRequest, boardWritable: boolean): [number, string] | undefined {
  if (request.routeOptions.url === LOGIN_PATH) return loginProblem(request);
  const access = requestAccess(request);
  if (access.role === 'read') return [403, 'the read-only token (HUBFLOW_API_READ_TOKEN) may not change anything; use HUBFLOW_API_TOKEN'];
  const foreign = crossOrigin(request);
  if (foreign) return [403, `refusing a cross-site request: ${foreign}`];
  // A browser sends Origin with every POST, PUT and DELETE it makes; only a forged request
  // would ride on the cookie without one, so cookie-only requests must name their origin.
  const needsOrigin = access.via === 'cookie' || isBoardAction(request, boardWritable);
  if (needsOrigin && request.headers.origin === undefined)
    return [403, 'a request authenticated by the cookie alone needs an Origin header naming this server'];
  // application/json cannot be sent cross-site without a CORS preflight, which is never granted.
  if (!isBoardAction(request, boardWritable) && !isJson(request.headers['content-type'])) {
    return [415, `a ${request.method} needs Content-Type: application/json (send {} for no options)`];
  }
  return undefined;
}

export interface GuardOptions {
  /** A token is configured: requests are authenticated, so the Host check is not needed. */
  authenticated: boolean;
  boardWritable: boolean;
}

/**
 * The checks that keep other web pages out, run after auth.ts has said who the request is:
 * loopback Host names when there is no token, and for every request that can change
 * something, an operator, a same-origin (or absent) Origin and Sec-Fetch-Site, and JSON.
 */
export function installGuard(app: FastifyInstance, options: GuardOptions): void {
  app.addHook('onRequest', async (request: FastifyRequest, reply: FastifyReply) => {
    if (!options.authenticated) {
      const problem = hostProblem(app, request);
      if (problem) return sendError(reply, 421, problem);
    }
    if (SAFE_METHODS.has(request.method)) return;
    const problem = actionProblem(request, options.boardWritable);
    if (problem) return sendError(reply, problem[0], problem[1]);
  });
}
