import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../core/config.ts';
import { sendError } from './errors.ts';

export const TOKEN_COOKIE = 'hubflow_token';

/** Routes a load balancer or orchestrator probes without credentials. */
const OPEN_ROUTES = new Set(['/healthz']);

// Hashing first gives equal-length inputs, so timingSafeEqual neither throws nor leaks the length.
function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function bearerToken(header: string | undefined): string | undefined {
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return match?.[1];
}

function cookieValue(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0 || part.slice(0, eq).trim() !== name) continue;
    try {
      return decodeURIComponent(part.slice(eq + 1).trim());
    } catch {
      return undefined;
    }
  }
  return undefined;
}

/** Browser routes: a token in their URL is traded for a cookie and the URL is cleaned by a redirect. */
function isBrowserPath(pathname: string): boolean {
  return !pathname.startsWith('/api/') && pathname !== '/metrics' && !pathname.startsWith('/admin/queues/api/');
}

function tokenCookie(token: string, request: FastifyRequest): string {
  const secure = request.protocol === 'https' ? '; Secure' : '';
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure}`;
}

/**
 * Every route but the open ones needs the API token: as a Bearer header (scripts, Prometheus),
 * or as the cookie a browser got by opening any page once with `?token=`. SameSite=Strict keeps
 * other sites from riding on the cookie to bull-board's or the API's mutating routes.
 */
export function installAuth(app: FastifyInstance, token: string | undefined): void {
  if (!token) return;
  const expected = digest(token);
  const matches = (candidate: string | undefined) => candidate !== undefined && timingSafeEqual(digest(candidate), expected);

  app.addHook('onRequest', async (request, reply) => {
    // The matched route, not the raw URL: '/healthz/../api/dags' and encodings cannot slip through.
    if (OPEN_ROUTES.has(request.routeOptions.url ?? '')) return;
    if (matches(bearerToken(request.headers.authorization))) return;
    if (matches(cookieValue(request.headers.cookie, TOKEN_COOKIE))) return;

    const url = new URL(request.url, 'http://hubflow.invalid');
    if (matches(url.searchParams.get('token') ?? undefined)) {
      reply.header('set-cookie', tokenCookie(token, request));
      if (request.method === 'GET' && isBrowserPath(url.pathname)) {
        // Out of the address bar, the history and later Referer headers.
        url.searchParams.delete('token');
        return reply.redirect(url.pathname + url.search, 303);
      }
      return;
    }
    return sendError(
      reply,
      401,
      'authentication required: send Authorization: Bearer <HUBFLOW_API_TOKEN> (browsers: open a page once with ?token=<HUBFLOW_API_TOKEN>)',
    );
  });
}

/** Hosts only this machine can reach; anything else must not serve without a token. */
export function isLoopbackHost(host: string): boolean {
  const h = host
    .trim()
    .toLowerCase()
    .replace(/^\[(.*)\]$/, '$1');
  if (h === 'localhost') return true;
  if (isIPv4(h)) return h.startsWith('127.');
  if (isIPv6(h)) return h === '::1' || h === '0:0:0:0:0:0:0:1' || /^::ffff:127\.\d+\.\d+\.\d+$/.test(h);
  return false;
}

/**
 * Refuses, before anything is opened, to serve beyond loopback without a token: anyone who can
 * reach the port could trigger runs and retry or delete jobs in bull-board.
 */
export function checkServable(config: Pick<Config, 'HUBFLOW_HOST' | 'HUBFLOW_API_TOKEN'>): void {
  if (!config.HUBFLOW_API_TOKEN && !isLoopbackHost(config.HUBFLOW_HOST)) {
    throw new Error(
      `refusing to serve on ${config.HUBFLOW_HOST} without authentication: set HUBFLOW_API_TOKEN (at least 16 characters), or bind HUBFLOW_HOST to 127.0.0.1`,
    );
  }
}
