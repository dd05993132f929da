import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';
import { json, send } from './http-client.ts';
import { etl } from './server-support.ts';

const runCount = async (rt: TestRuntime) => (await rt.db.selectFrom('dag_runs').select('id').execute()).length;

describe('without a token, on loopback', () => {
  let rt: TestRuntime;
  let server: RunningServer;
  let port: string;
  beforeAll(async () => {
    rt = await testRuntime([etl]);
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    port = new URL(server.url).port;
  });
  afterAll(async () => {
    await server?.close();
    await rt?.close();
  });

  it('answers only loopback Host names with its own port (a rebound DNS name gets nothing)', async () => {
    for (const host of [`127.0.0.1:${port}`, `localhost:${port}`, `[::1]:${port}`, `LOCALHOST:${port}`]) {
      expect((await send(server.url, '/api/dags', { headers: { host } })).status, host).toBe(200);
    }
    for (const host of [`evil.example:${port}`, `127.0.0.1.nip.io:${port}`, `localhost:${Number(port) + 1}`, 'localhost', `10.0.0.1:${port}`, '']) {
      const res = await send(server.url, '/api/dags', { headers: { host } });
      expect(res.status, host).toBe(421);
      expect(JSON.parse(res.body).message).toMatch(/answers only to 127\.0\.0\.1, localhost or \[::1\]/);
    }
    expect((await send(server.url, '/healthz', { headers: { host: `evil.example:${port}` } })).status).toBe(421);
    const rebound = await send(server.url, '/api/dags/http-etl/runs', {
      ...json({}),
      headers: { host: `evil.example:${port}`, 'content-type': 'application/json' },
    });
    expect(rebound.status).toBe(421);
    expect(await runCount(rt)).toBe(0);
  });

  it('acts only on JSON from its own origin (or no Origin at all)', async () => {
    const before = await runCount(rt);
    const trigger = (headers: Record<string, string>, body = '{}') => send(server.url, '/api/dags/http-etl/runs', { method: 'POST', headers, body });
    // What a page on another site can send without a preflight: no type, a form, text.
    expect((await trigger({}, '')).status).toBe(415);
    expect((await trigger({ 'content-type': 'application/x-www-form-urlencoded' }, 'a=1')).status).toBe(415);
    expect((await trigger({ 'content-type': 'text/plain' })).status).toBe(415);
    expect((await trigger({ 'content-type': 'multipart/form-data; boundary=x' }, '--x--')).status).toBe(415);
    const jsonFrom = (extra: Record<string, string>) => trigger({ 'content-type': 'application/json', ...extra });
    for (const origin of ['http://evil.example', `http://localhost:${Number(port) + 1}`, 'null', `https://127.0.0.1:${port}`]) {
      const res = await jsonFrom({ origin });
      expect(res.status, origin).toBe(403);
      expect(JSON.parse(res.body).message).toMatch(/cross-site/);
    }
    for (const site of ['cross-site', 'same-site']) expect((await jsonFrom({ 'sec-fetch-site': site })).status, site).toBe(403);
    expect(await runCount(rt)).toBe(before);

    expect((await jsonFrom({ origin: `http://127.0.0.1:${port}`, 'sec-fetch-site': 'same-origin' })).status).toBe(201);
    expect((await jsonFrom({})).status).toBe(201); // curl, scripts
    expect((await trigger({ 'content-type': 'application/json; charset=utf-8' }, '')).status).toBe(201); // no options
    expect(await runCount(rt)).toBe(before + 3);
  });

  it('keeps bull-board read-only: no job can be added, retried or removed there', async () => {
    const board = '/admin/queues/api/queues/tasks';
    expect(
      (await send(server.url, `${board}/add`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: 'name=x' })).status,
    ).toBe(415);
    const add = await send(server.url, `${board}/add`, json({ name: 'forged', data: { runId: 1, taskId: 'load' } }, { origin: `http://127.0.0.1:${port}` }));
    expect(add.status).toBe(405);
    for (const [method, path] of [
      ['PUT', `${board}/retry/failed`],
      ['PUT', `${board}/empty`],
      ['PUT', `${board}/pause`],
      ['PUT', `${board}/x/clean`],
    ] as const) {
      expect((await send(server.url, path, { method, headers: { 'content-type': 'application/json' }, body: '{}' })).status, path).toBe(405);
    }
    // Exactly the jobs of the instances the store queued: nothing forged joined them.
    const jobs = await rt.engine.dispatcher.queue.getJobs(['waiting', 'delayed', 'active', 'completed', 'failed']);
    const queued = await rt.db.selectFrom('task_instances').select('id').where('state', '=', 'queued').execute();
    expect(jobs.map((j) => j.name)).not.toContain('forged');
    expect(jobs.length).toBe(queued.length);
    const queues = JSON.parse((await send(server.url, '/admin/queues/api/queues')).body) as { queues: { readOnlyMode: boolean }[] };
    expect(queues.queues.map((q) => q.readOnlyMode)).toEqual([true]);
  });
});

describe('with bull-board made writable (HUBFLOW_BOARD_WRITABLE)', () => {
  let rt: TestRuntime;
  let server: RunningServer;
  beforeAll(async () => {
    rt = await testRuntime([etl], { HUBFLOW_BOARD_WRITABLE: 'true' });
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
  });
  afterAll(async () => {
    await server?.close();
    await rt?.close();
  });

  it('takes its buttons (no body, no content type) only with this server as the Origin', async () => {
    const pause = (headers: Record<string, string>) => send(server.url, '/admin/queues/api/queues/tasks/pause', { method: 'PUT', headers });
    expect((await pause({})).status).toBe(403);
    expect((await pause({ origin: 'http://evil.example' })).status).toBe(403);
    expect(await rt.engine.dispatcher.queue.isPaused()).toBe(false);
    expect((await pause({ origin: server.url })).status).toBe(200);
    expect(await rt.engine.dispatcher.queue.isPaused()).toBe(true);
    await rt.engine.dispatcher.queue.resume();
    // hubflow's own routes still want JSON.
    expect((await send(server.url, '/api/dags/http-etl/runs', { method: 'POST', headers: { origin: server.url } })).status).toBe(415);
  });
});
