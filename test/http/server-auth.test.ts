import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isLoopbackHost, TOKEN_COOKIE } from '../../server/http/auth.ts';
import { createServer, startServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';
import { etl } from './server-support.ts';

const TOKEN = 'test-token-0123456789abcdef';

describe('with HUBFLOW_API_TOKEN set', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;

  beforeAll(async () => {
    rt = await testRuntime([etl], { HUBFLOW_API_TOKEN: TOKEN });
    app = await createServer(rt);
  });
  afterAll(async () => {
    await app?.close();
    await rt?.close();
  });

  it('needs the token everywhere but /healthz', async () => {
    const denied = await app.inject({ method: 'GET', url: '/api/dags' });
    expect(denied.statusCode).toBe(401);
    expect(denied.json()).toMatchObject({ statusCode: 401, error: 'Unauthorized' });
    expect((await app.inject({ method: 'GET', url: '/api/dags', headers: { authorization: 'Bearer wrong-token-0123456789' } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/api/dags', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'POST', url: '/api/dags/http-etl/runs', payload: {} })).statusCode).toBe(401);
    for (const url of ['/', '/metrics', '/admin/queues', '/admin/queues/api/queues', '/runs/1', '/no-such-route']) {
      expect((await app.inject({ method: 'GET', url })).statusCode, url).toBe(401);
    }
    expect((await app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${TOKEN}` } })).statusCode).toBe(200);
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
  });

  it('trades ?token= for an HttpOnly SameSite=Strict cookie, which then suffices', async () => {
    const first = await app.inject({ method: 'GET', url: `/admin/queues?token=${TOKEN}` });
    expect(first.statusCode).toBe(303);
    expect(first.headers.location).toBe('/admin/queues');
    const setCookie = String(first.headers['set-cookie']);
    expect(setCookie).toMatch(new RegExp(`^${TOKEN_COOKIE}=${TOKEN};`));
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');

    const cookie = `${TOKEN_COOKIE}=${TOKEN}`;
    expect((await app.inject({ method: 'GET', url: '/admin/queues', headers: { cookie } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/admin/queues/api/queues', headers: { cookie } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/', headers: { cookie: `other=1; ${cookie}` } })).statusCode).toBe(200);
    expect((await app.inject({ method: 'GET', url: '/', headers: { cookie: `${TOKEN_COOKIE}=nope` } })).statusCode).toBe(401);
    expect((await app.inject({ method: 'GET', url: '/?token=nope' })).statusCode).toBe(401);
  });

  it('starts on a non-loopback host when a token is set', async () => {
    const server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '0.0.0.0', HUBFLOW_PORT: 0 } });
    try {
      const res = await fetch(`${server.url}/api/dags`, { headers: { authorization: `Bearer ${TOKEN}` } });
      expect(res.status).toBe(200);
    } finally {
      await server.close();
    }
  });
});

describe('isLoopbackHost', () => {
  it('accepts only addresses of this machine', () => {
    for (const host of ['127.0.0.1', '127.1.2.3', '::1', '[::1]', 'localhost', 'LOCALHOST', '::ffff:127.0.0.1']) expect(isLoopbackHost(host), host).toBe(true);
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '192.168.1.10', 'example.com', '128.0.0.1', 'localhost.example.com', ''])
      expect(isLoopbackHost(host), host).toBe(false);
  });
});
