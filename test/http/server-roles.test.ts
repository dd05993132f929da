import { Writable } from 'node:stream';
import { appRoutes } from '@bull-board/api/dist/routes.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKEN_COOKIE } from '../../server/http/auth.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { createLogger } from '../../core/log.ts';
import { testRuntime, type TestRuntime } from '../support.ts';
import { json, send } from './http-client.ts';
import { etl } from './server-support.ts';

const TOKEN = 'operator-token-0123456789abcdef';
const READ = 'read-only-token-0123456789abcdef';
const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
const cookie = (token: string) => ({ cookie: `${TOKEN_COOKIE}=${token}` });

/** Every route that changes something: hubflow's, each of bull-board's (from its own route table), and one no one has. */
function actions(runId: number): [string, string][] {
  const board = appRoutes.api.flatMap((r) =>
    [r.method]
      .flat()
      .filter((m) => m !== 'get')
      .flatMap((m) =>
        [r.route]
          .flat()
          .map((route): [string, string] => [m.toUpperCase(), `/admin/queues${route.replace(':queueName', 'tasks').replace(/:[a-zA-Z]+/g, 'x')}`]),
      ),
  );
  expect(board.length).toBeGreaterThan(20);
  return [
    ['POST', '/api/dags/http-etl/runs'],
    ['POST', '/api/dags/http-etl/runs/cancel'],
    ['POST', `/api/runs/${runId}/cancel`],
    ['POST', `/api/runs/${runId}/clear`],
    ['POST', `/api/runs/${runId}/tasks/extract/retry`],
    ['POST', `/api/runs/${runId}/tasks/extract/mark`],
    ['POST', `/api/runs/${runId}/mark`],
    ['POST', '/api/dags/http-etl/pause'],
    ['POST', '/api/dags/http-etl/unpause'],
    ['POST', '/api/dead-letters/replay'],
    ...board,
    ['DELETE', `/api/runs/${runId}`],
  ];
}

describe('with an operator token and a read-only token', () => {
  let rt: TestRuntime;
  let server: RunningServer;
  let origin: string;
  const logged: string[] = [];
  beforeAll(async () => {
    rt = await testRuntime([etl], { HUBFLOW_API_TOKEN: TOKEN, HUBFLOW_API_READ_TOKEN: READ });
    // Everything the server logs, at its most talkative, to look for the tokens in.
    const sink = new Writable({ write: (chunk, _enc, done) => done(void logged.push(String(chunk))) });
    const log = createLogger('trace', sink);
    server = await startServer({ ...rt, log, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    origin = server.url;
  });
  afterAll(async () => {
    await server?.close();
    await rt?.close();
  });

  it('lets the read token see pages, API reads and metrics, and refuses it every action', async () => {
    const run = await rt.engine.triggerRun('http-etl');
    for (const path of ['/', `/runs/${run.id}`, '/api/dags', '/api/runs', `/api/runs/${run.id}`, '/metrics', '/admin/queues', '/admin/queues/api/queues']) {
      expect((await send(server.url, path, { headers: bearer(READ) })).status, path).toBe(200);
    }
    const before = await rt.db.selectFrom('dag_runs').selectAll().execute();
    for (const [method, path] of actions(run.id)) {
      for (const credential of [bearer(READ), { ...cookie(READ), origin }]) {
        const res = await send(server.url, path, { method, headers: { ...credential, 'content-type': 'application/json' }, body: '{}' });
        expect(res.status, `${method} ${path}`).toBe(403);
        expect(JSON.parse(res.body).message).toMatch(/read-only token/);
      }
    }
    expect(await rt.db.selectFrom('dag_runs').selectAll().execute()).toEqual(before);
    expect(await rt.engine.dispatcher.queue.getJobs(['waiting', 'delayed', 'completed', 'failed'])).toHaveLength(1);
    // The operator's token does act.
    expect((await send(server.url, '/api/dags/http-etl/runs', json({ logicalDate: '2024-01-01' }, bearer(TOKEN)))).status).toBe(201);
  });

  it('accepts a cookie-only action only with this server as its Origin', async () => {
    const trigger = (logicalDate: string, headers: Record<string, string>) => send(server.url, '/api/dags/http-etl/runs', json({ logicalDate }, headers));
    const noOrigin = await trigger('2024-02-01', cookie(TOKEN));
    expect(noOrigin.status).toBe(403);
    expect(JSON.parse(noOrigin.body).message).toMatch(/cookie alone needs an Origin/);
    expect((await trigger('2024-02-01', { ...cookie(TOKEN), origin: 'http://evil.example' })).status).toBe(403);
    expect((await trigger('2024-02-01', { ...cookie(TOKEN), origin, 'sec-fetch-site': 'cross-site' })).status).toBe(403);
    expect((await trigger('2024-02-01', { ...cookie(TOKEN), origin })).status).toBe(201);
    // A script with the bearer token sends no Origin; one that names a foreign origin is still refused.
    expect((await trigger('2024-02-02', bearer(TOKEN))).status).toBe(201);
    expect((await trigger('2024-02-03', { ...bearer(TOKEN), origin: 'http://evil.example' })).status).toBe(403);
    expect((await trigger('2024-02-03', { ...bearer(TOKEN), 'content-type': 'text/plain' })).status).toBe(415);
  });

  it('trades ?token= for a cookie of the same role', async () => {
    const first = await send(server.url, `/?token=${READ}`);
    expect(first.status).toBe(303);
    const set = String(first.headers['set-cookie']);
    expect(set).toContain(`${TOKEN_COOKIE}=${READ};`);
    expect(set).not.toContain('Secure'); // plain HTTP, no trusted proxy
    expect((await send(server.url, '/', { headers: cookie(READ) })).status).toBe(200);
    expect((await send(server.url, '/api/dags/http-etl/runs', json({}, { ...cookie(READ), origin }))).status).toBe(403);
  });

  it('never logs a token, however its query key is spelled', async () => {
    for (const token of [TOKEN, READ]) {
      for (const key of ['token', '%74oken', 'to%6Ben', 'TOKEN', 'tok%65n']) {
        await send(server.url, `/api/dags?${key}=${token}`);
        await send(server.url, `/api/dags?${key}=${encodeURIComponent(token)}&x=1`, { headers: bearer(token) });
        await send(server.url, `/no-such-page?${key}=${token}`, { headers: bearer(token) });
        await send(server.url, `/api/dags/http-etl/runs?${key}=${token}`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: token });
      }
      await send(server.url, `/runs/1?token=${token}`);
      // Where no key says it is a token: a path, another key, each character percent-encoded.
      const encoded = [...token].map((c) => `%${c.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
      for (const path of [`/${token}`, `/api/runs?dag=${token}`, `/api/runs?dag=${encoded}`, `/x/${encoded}`])
        await send(server.url, path, { headers: bearer(token) });
    }
    const text = logged.join('');
    expect(text).toContain('"msg":"request"');
    expect(text).toContain('=***');
    for (const secret of [TOKEN, READ]) {
      for (const form of [secret, encodeURIComponent(secret), Buffer.from(secret).toString('base64'), secret.slice(0, 20), '%6f%70%65%72'])
        expect(text).not.toContain(form);
    }
  });
});

describe('behind a TLS-terminating proxy (HUBFLOW_TRUST_PROXY)', () => {
  let rt: TestRuntime;
  let trusted: RunningServer;
  let untrusted: RunningServer;
  beforeAll(async () => {
    rt = await testRuntime([etl], { HUBFLOW_API_TOKEN: TOKEN });
    const listen = (trust: boolean) => startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0, HUBFLOW_TRUST_PROXY: trust } });
    trusted = await listen(true);
    untrusted = await listen(false);
  });
  afterAll(async () => {
    await trusted?.close();
    await untrusted?.close();
    await rt?.close();
  });

  it('marks the cookie Secure and expects an https Origin', async () => {
    const forwarded = { 'x-forwarded-proto': 'https', 'x-forwarded-host': 'hubflow.example.com' };
    const viaProxy = await send(trusted.url, `/?token=${TOKEN}`, { headers: forwarded });
    expect(String(viaProxy.headers['set-cookie'])).toMatch(/; Secure$/);
    const action = (server: RunningServer, origin: string) => send(server.url, '/api/dags/http-etl/runs', json({}, { ...cookie(TOKEN), ...forwarded, origin }));
    expect((await action(trusted, 'https://hubflow.example.com')).status).toBe(201);
    expect((await action(trusted, 'http://hubflow.example.com')).status).toBe(403);

    // Without trust, X-Forwarded-* from whoever connects are ignored.
    expect(String((await send(untrusted.url, `/?token=${TOKEN}`, { headers: forwarded })).headers['set-cookie'])).not.toContain('Secure');
    const refused = await action(untrusted, `https://${new URL(untrusted.url).host}`);
    expect(refused.status).toBe(403);
    expect(JSON.parse(refused.body).message).toMatch(/set HUBFLOW_TRUST_PROXY/);
  });
});
