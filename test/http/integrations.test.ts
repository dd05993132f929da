import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServer } from '../../server/http/server.ts';
import { syncHistory } from '../integration-support.ts';
import type { TestRuntime } from '../support.ts';

let rt: TestRuntime;
let app: FastifyInstance;
beforeAll(async () => {
  rt = await syncHistory();
  app = await createServer(rt);
});
afterAll(async () => {
  await app?.close();
  await rt?.close();
});

describe('integrations over HTTP', () => {
  it('GET /api/integrations lists SLIs, SLOs and the verdict over the window asked', async () => {
    const res = await app.inject({ method: 'GET', url: '/api/integrations?window=24h' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({
      window: '1d',
      breached: 1,
      integrations: [{ integration: 'workers-to-warehouse', met: false, sli: { successRate: 0.5, deadLetters: 1 } }],
    });
    const bad = await app.inject({ method: 'GET', url: '/api/integrations?window=-1' });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().message).toContain("window: '-1' is not a duration");
  });

  it('the /integrations page shows each SLO and escapes what the DAG declares', async () => {
    const res = await app.inject({ method: 'GET', url: '/integrations' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-security-policy']).toContain("default-src 'none'");
    expect(res.body).toContain('1 of 1 breach an SLO');
    expect(res.body).toContain('<code>success_rate</code></td><td class="num">50.00%</td><td class="num">90.00%</td>');
    expect(res.body).toContain('payroll &lt;ops&gt;');
    expect(res.body).not.toContain('payroll <ops>');
  });

  it('/metrics has a series per integration beside the existing ones', async () => {
    const text = (await app.inject({ method: 'GET', url: '/metrics' })).body;
    const labels = 'integration="workers-to-warehouse",dag="sync-to-warehouse"';
    expect(text).toContain(`hubflow_integration_slo_met{${labels},slo="success_rate"} 0`);
    expect(text).toContain(`hubflow_integration_slo_met{${labels},slo="latency_p99"} 1`);
    expect(text).toContain(`hubflow_integration_success_ratio{${labels}} 0.5`);
    expect(text).toMatch(new RegExp(`hubflow_integration_latency_seconds\\{${labels},quantile="0.99"\\} 36\\d\\d`));
    expect(text).toContain(`hubflow_integration_dead_letters{${labels}} 1`);
    expect(text).toContain('hubflow_dead_letters{dag="sync-to-warehouse"} 1');
  });
});
