import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { loadDags } from '../../server/engine/loader.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { browserMissing, launchBrowser, screenshot } from './browser.ts';

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);

const dags = fileURLToPath(new URL('./gantt-dags/', import.meta.url));

describe.skipIf(missing !== undefined)('the gantt page in a browser', () => {
  let rt: TestRuntime;
  let worker: Executor;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let runId: number;

  beforeAll(async () => {
    rt = await testRuntime(await loadDags(dags));
    worker = startWorker(rt, { concurrency: 4 });
    const run = await rt.engine.triggerRun('ui-gantt', { logicalDate: new Date('2026-11-01T02:00:00Z') });
    expect((await waitForRun(rt, run.id)).state).toBe('success');
    runId = run.id;
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 700 } });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await worker?.close();
    await rt?.close();
  });

  it('is linked from the run page and draws one row per try, mapped instances by their item, in order', async () => {
    await page.goto(`${server.url}/runs/${runId}`);
    await page.getByRole('link', { name: 'gantt', exact: true }).click();
    expect(new URL(page.url()).pathname).toBe(`/runs/${runId}/gantt`);
    const rows = await page
      .locator('.gantt .grow[data-task]')
      .evaluateAll((rs) => rs.map((r) => [r.getAttribute('data-task'), r.getAttribute('data-item'), r.getAttribute('data-try'), r.getAttribute('data-state')]));
    expect(rows).toEqual([
      ['tenants', '', '1', 'success'],
      ['extract', 'acme', '1', 'success'],
      ['extract', 'globex', '1', 'retry'],
      ['extract', 'globex', '2', 'success'],
      ['report', '', '1', 'success'],
    ]);
    await expect(page.locator('.gantt .grow[data-item="acme"] .glabel').textContent()).resolves.toContain('extract acme');
  });

  it('places each try after the one before it, its running span after its queued span', async () => {
    await page.goto(`${server.url}/runs/${runId}/gantt`);
    const spans = await page.locator('.gantt .grow[data-task]').evaluateAll((rs) =>
      rs.map((r) =>
        [...r.querySelectorAll('.bar')].map((b) => {
          const box = b.getBoundingClientRect();
          return { kind: b.getAttribute('data-kind'), left: box.left, right: box.right };
        }),
      ),
    );
    // Every try ran; the running span is the last and starts where its queue wait ends.
    for (const bars of spans) expect(bars.at(-1)?.kind).toBe('run');
    for (const bars of spans) for (let i = 1; i < bars.length; i++) expect(bars[i]!.left).toBeGreaterThanOrEqual(bars[i - 1]!.left);
    const [, , first, second, report] = spans;
    // The retry is queued when the first try ends, and runs after it; report runs after both.
    expect(second![0]!.left).toBeGreaterThanOrEqual(first!.at(-1)!.right - 1);
    expect(second!.at(-1)!.left).toBeGreaterThan(first!.at(-1)!.left);
    expect(report!.at(-1)!.left).toBeGreaterThanOrEqual(second!.at(-1)!.left);
    // The report waited for the mail freeze to end: that wait is hatched and names the blackout.
    expect(report![0]!.kind).toBe('deferred');
    await expect(page.locator('.grow[data-task="report"] .bar.deferred').getAttribute('title')).resolves.toMatch(/^deferred: ui-mailer: mail freeze until /);
    await screenshot(page, 'gantt');
  });

  it('answers 404 for a run that does not exist', async () => {
    const res = await page.goto(`${server.url}/runs/999999999/gantt`);
    expect(res?.status()).toBe(404);
  });
});
