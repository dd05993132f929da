import type { FastifyInstance } from 'fastify';
import { defineDag, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { createServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';

const HOSTILE = '<img src=x onerror=alert(1)>';

const marked = defineDag({
  id: 'http-marked',
  description: `a description with ${HOSTILE}`,
  tasks: {
    tenants: task({ run: () => [{ tenant: HOSTILE }, { tenant: 'acme' }] }),
    extract: task<{ tenant: string }>({ map: 'tenants', run: (ctx) => ctx.item.tenant }),
  },
});

describe('the DAG page', () => {
  let rt: TestRuntime;
  let app: FastifyInstance;
  let worker: Executor;

  beforeAll(async () => {
    rt = await testRuntime([marked]);
    app = await createServer(rt);
    worker = startWorker(rt, { concurrency: 2 });
    const run = await rt.engine.triggerRun(marked.id);
    expect((await waitForRun(rt, run.id)).state).toBe('success');
  });
  afterAll(async () => {
    await app?.close();
    await worker?.close();
    await rt?.close();
  });

  it('escapes what DAG authors and items put on it, and forbids scripts', async () => {
    const res = await app.inject({ method: 'GET', url: `/dags/${marked.id}?expand=extract` });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.body).not.toContain(HOSTILE);
    expect(res.body).toContain('a description with &lt;img src=x onerror=alert(1)&gt;');
    // The item row is labelled by the tenant, escaped, in its attribute and its text.
    expect(res.body).toContain('data-item="&lt;img src=x onerror=alert(1)&gt;"');
    expect(res.body).toContain('↳ &lt;img src=x onerror=alert(1)&gt;');
    expect(res.body).toContain('Schedule</dt><dd><span class="muted">manual only</span>');
  });

  it('ignores an expand that names no mapped task, and caps the runs it shows', async () => {
    const res = await app.inject({ method: 'GET', url: `/dags/${marked.id}?expand=tenants&runs=99999` });
    expect(res.statusCode).toBe(200);
    expect(res.body).not.toContain('class="item"');
    expect(res.body).toContain('The latest run (');
    expect(res.body).toContain('up to 1000');
  });
});
