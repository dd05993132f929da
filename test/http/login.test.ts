import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_COOKIE } from '../../server/http/auth.ts';
import { createServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';
import { etl } from './server-support.ts';

const TOKEN = 'test-token-0123456789abcdef';
const READ_TOKEN = 'read-token-0123456789abcdef';
const HTML = { accept: 'text/html,application/xhtml+xml,*/*;q=0.8' };
const FORM = { 'content-type': 'application/x-www-form-urlencoded', origin: 'http://localhost:80', host: 'localhost:80' };

describe('the login page', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;

  beforeAll(async () => {
    rt = await testRuntime([etl], { HUBFLOW_API_TOKEN: TOKEN, HUBFLOW_API_READ_TOKEN: READ_TOKEN });
    app = await createServer(rt);
  });
  afterAll(async () => {
    await app?.close();
    await rt?.close();
  });

  const login = (body: string, headers: Record<string, string> = FORM) => app.inject({ method: 'POST', url: '/login', headers, payload: body });

  it('is what a browser gets for a page without a token; an API client keeps the JSON 401', async () => {
    const page = await app.inject({ method: 'GET', url: '/runs/1?offset=0', headers: HTML });
    expect(page.statusCode).toBe(401);
    expect(page.headers['content-type']).toMatch(/^text\/html/);
    expect(page.headers['content-security-policy']).toContain("form-action 'self'");
    expect(page.body).toContain('<form method="post" action="/login">');
    expect(page.body).toContain('name="next" value="/runs/1?offset=0"');
    const api = await app.inject({ method: 'GET', url: '/api/dags', headers: HTML });
    expect(api.statusCode).toBe(401);
    expect(api.json()).toMatchObject({ error: 'Unauthorized' });
    expect((await app.inject({ method: 'GET', url: '/runs/1' })).json()).toMatchObject({ statusCode: 401 });
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: HTML })).headers['content-type']).toMatch(/json/);
  });

  it('sets the cookie for a right token and sends the browser back where it was going', async () => {
    const ok = await login(`token=${TOKEN}&next=${encodeURIComponent('/runs/1?offset=0')}`);
    expect(ok.statusCode).toBe(303);
    expect(ok.headers.location).toBe('/runs/1?offset=0');
    const cookie = String(ok.headers['set-cookie']);
    expect(cookie).toMatch(new RegExp(`^${TOKEN_COOKIE}=${TOKEN};.*HttpOnly; SameSite=Strict`));
    expect((await app.inject({ method: 'GET', url: '/', headers: { cookie: cookie.split(';')[0]! } })).statusCode).toBe(200);
  });

  it('logs in with the read-only token, which still may not act', async () => {
    const ok = await login(`token=${READ_TOKEN}&next=/`);
    expect(ok.statusCode).toBe(303);
    const cookie = String(ok.headers['set-cookie']).split(';')[0]!;
    expect((await app.inject({ method: 'GET', url: '/', headers: { cookie } })).statusCode).toBe(200);
    const act = await app.inject({
      method: 'POST',
      url: '/api/dags/http-etl/runs',
      headers: { cookie, origin: 'http://localhost:80', host: 'localhost:80', 'content-type': 'application/json' },
      payload: {},
    });
    expect(act.statusCode).toBe(403);
  });

  it('shows the form again with an error for a wrong token, and sets no cookie', async () => {
    const wrong = await login('token=nope&next=/');
    expect(wrong.statusCode).toBe(401);
    expect(wrong.headers['set-cookie']).toBeUndefined();
    expect(wrong.body).toContain('That token is not valid.');
    expect((await login('next=/')).statusCode).toBe(401);
  });

  it('refuses a login posted from another site or without an Origin', async () => {
    const foreign = await login(`token=${TOKEN}`, { ...FORM, origin: 'https://evil.example' });
    expect(foreign.statusCode).toBe(403);
    expect(foreign.headers['set-cookie']).toBeUndefined();
    const crossSite = await login(`token=${TOKEN}`, { ...FORM, 'sec-fetch-site': 'cross-site' });
    expect(crossSite.statusCode).toBe(403);
    const { origin: _origin, ...noOrigin } = FORM;
    expect((await login(`token=${TOKEN}`, noOrigin)).statusCode).toBe(403);
  });

  it('redirects only to a path on this server', async () => {
    for (const next of ['//evil.example/', 'https://evil.example/', '/\\evil.example', 'javascript:alert(1)']) {
      const res = await login(`token=${TOKEN}&next=${encodeURIComponent(next)}`);
      expect(res.headers.location, next).toBe('/');
    }
  });
});
