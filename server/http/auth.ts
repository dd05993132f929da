import { createHash, timingSafeEqual } from 'node:crypto';
import { isIPv4, isIPv6 } from 'node:net';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Config } from '../../core/config.ts';
import { sendError } from './errors.ts';
import { LOGIN_PATH, registerLogin, sendLoginPage, wantsLoginPage } from './login.ts';

export const TOKEN_COOKIE = 'hubflow_token';

/** Routes a load balancer or orchestrator probes without credentials, and the login form (it checks the token itself). */
const OPEN_ROUTES = new Set(['/healthz', LOGIN_PATH]);

/** What a request may do: `operate` (every route) or `read` (GET and HEAD only). */
export type Role = 'operate' | 'read';

/** How a request proved who it is; a cookie alone is what a forged cross-site request carries. */
export interface Access {
  role: Role;
  via: 'open' | 'bearer' | 'cookie' | 'query';
}

const accessOf = new WeakMap<FastifyRequest, Access>();

/** Who the request is: anyone may operate a token-less (loopback-only) server. */
export function requestAccess(request: FastifyRequest): Access {
  return accessOf.get(request) ?? { role: 'operate', via: 'open' };
}

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
  // request.protocol believes X-Forwarded-Proto only from a proxy HUBFLOW_TRUST_PROXY trusts.
  const secure = request.protocol === 'https' ? '; Secure' : '';
  return `${TOKEN_COOKIE}=${encodeURIComponent(token)}; Path=/; HttpOnly; SameSite=Strict${secure}`;
}

type Tokens = Pick<Config, 'HUBFLOW_API_TOKEN' | 'HUBFLOW_API_READ_TOKEN'>;

/**
 * Every route but the open ones needs a token: as a Bearer header (scripts, Prometheus), or as
 * the cookie a browser got from the login form (or by opening any page once with `?token=`). The operator's token may do
 * everything; the read token (HUBFLOW_API_READ_TOKEN) only reads, which guard.ts enforces.
 */
export function installAuth(app: FastifyInstance, tokens: Tokens): void {
  if (!tokens.HUBFLOW_API_TOKEN) return;
  const known: [Buffer, Role, string][] = [[digest(tokens.HUBFLOW_API_TOKEN), 'operate', tokens.HUBFLOW_API_TOKEN]];
  if (tokens.HUBFLOW_API_READ_TOKEN) known.push([digest(tokens.HUBFLOW_API_READ_TOKEN), 'read', tokens.HUBFLOW_API_READ_TOKEN]);
  // Every token is compared, so the time taken does not say which one nearly matched.
  const roleOf = (candidate: string | undefined): { role: Role; token: string } | undefined => {
    if (candidate === undefined) return undefined;
    const d = digest(candidate);
    let found: { role: Role; token: string } | undefined;
    for (const [expected, role, token] of known) if (timingSafeEqual(d, expected)) found = { role, token };
    return found;
  };

  registerLogin(app, { valid: (token) => roleOf(token) !== undefined, cookie: tokenCookie });

  app.addHook('onRequest', async (request, reply) => {
    // The matched route, not the raw URL: '/healthz/../api/dags' and encodings cannot slip through.
    if (OPEN_ROUTES.has(request.routeOptions.url ?? '')) return;
    const bearer = roleOf(bearerToken(request.headers.authorization));
    if (bearer) {
      accessOf.set(request, { role: bearer.role, via: 'bearer' });
      return;
    }
    const cookie = roleOf(cookieValue(request.headers.cookie, TOKEN_COOKIE));
    if (cookie) {
      accessOf.set(request, { role: cookie.role, via: 'cookie' });
      return;
    }

    const url = new URL(request.url, 'http://hubflow.invalid');
    const query = roleOf(url.searchParams.get('token') ?? undefined);
    if (query) {
      accessOf.set(request, { role: query.role, via: 'query' });
      if (request.method === 'GET' && isBrowserPath(url.pathname)) {
        reply.header('set-cookie', tokenCookie(query.token, request));
        // Out of the address bar, the history and later Referer headers.
        url.searchParams.delete('token');
        return reply.redirect(url.pathname + url.search, 303);
      }
      return;
    }
    if (wantsLoginPage(request, isBrowserPath(url.pathname))) {
      url.searchParams.delete('token');
      return sendLoginPage(reply, url.pathname + url.search);
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
 * reach the port could trigger runs and clear or cancel tasks.
 */
export function checkServable(config: Pick<Config, 'HUBFLOW_HOST' | 'HUBFLOW_API_TOKEN'>): void {
  if (!config.HUBFLOW_API_TOKEN && !isLoopbackHost(config.HUBFLOW_HOST)) {
    throw new Error(
      `refusing to serve on ${config.HUBFLOW_HOST} without authentication: set HUBFLOW_API_TOKEN (at least 16 characters), or bind HUBFLOW_HOST to 127.0.0.1`,
    );
  }
}
