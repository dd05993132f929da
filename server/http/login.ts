import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { html, page } from './html.ts';

export const LOGIN_PATH = '/login';

// As the other pages, no script; the one form may post only to this server.
const CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; form-action 'self'; frame-ancestors 'none'";

/** A GET from a browser's address bar or link (it asks for HTML); scripts and API clients keep the JSON 401. */
export function wantsLoginPage(request: FastifyRequest, isBrowserPath: boolean): boolean {
  return (request.method === 'GET' || request.method === 'HEAD') && isBrowserPath && /\btext\/html\b/i.test(request.headers.accept ?? '');
}

/** Where to go after logging in: a path on this server only, so the form is no open redirect. */
export function safeNext(next: unknown): string {
  return typeof next === 'string' && /^\/(?![/\\])/.test(next) && !/[\r\n]/.test(next) ? next : '/';
}

export function sendLoginPage(reply: FastifyReply, next: string, error?: string): FastifyReply {
  const body = html`<h1>Log in</h1>
<p class="muted">This server needs a token: HUBFLOW_API_TOKEN to act, or HUBFLOW_API_READ_TOKEN to read.</p>
${error ? html`<p class="err" role="alert">${error}</p>` : ''}
<form method="post" action="${LOGIN_PATH}">
<input type="hidden" name="next" value="${safeNext(next)}">
<label>Token <input type="password" name="token" autocomplete="current-password" required autofocus></label>
<button type="submit">Log in</button>
</form>`;
  return reply
    .code(401)
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .header('cache-control', 'no-store')
    .type('text/html; charset=utf-8')
    .send(page('Log in', body));
}

export interface LoginHandlers {
  /** Whether the token is one the server knows. */
  valid(token: string): boolean;
  /** The Set-Cookie value that keeps the token for the browser. */
  cookie(token: string, request: FastifyRequest): string;
}

/**
 * POST /login takes the form (the only route that reads a form body: the parser is registered
 * in this route's own scope) and sets the auth cookie only for a right token. guard.ts holds
 * it to a same-origin Origin, so another site can neither log a browser in with its own token
 * nor use it to probe tokens from a victim's browser.
 */
export function registerLogin(app: FastifyInstance, handlers: LoginHandlers): void {
  void app.register(async (scope) => {
    scope.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 4096 }, (_request, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(String(body))));
    });
    scope.get<{ Querystring: { next?: string } }>(LOGIN_PATH, async (request, reply) => sendLoginPage(reply, safeNext(request.query.next)));
    scope.post<{ Body: Record<string, string> | undefined }>(LOGIN_PATH, async (request, reply) => {
      const token = request.body?.token ?? '';
      const next = safeNext(request.body?.next);
      if (!token || !handlers.valid(token)) return sendLoginPage(reply, next, 'That token is not valid.');
      return reply.header('set-cookie', handlers.cookie(token, request)).redirect(next, 303);
    });
  });
}
