import type { Browser, Page } from 'playwright-core';
import { defineDag, task } from 'hubflow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { browserMissing, launchBrowser, screenshot } from './browser.ts';

// Runs in the page, where the DOM has it; this file is type-checked without the DOM's types.
declare function getComputedStyle(element: unknown): { color: string };

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);

/** A mapped load whose globex instance fails its first try: each try logs through ctx.log and prints. */
const dag = defineDag({
  id: 'ui-logs',
  tasks: {
    tenants: task({ run: () => [{ tenant: 'acme' }, { tenant: 'globex' }] }),
    load: task<{ tenant: string }>({
      map: 'tenants',
      retry: { attempts: 2, base: '0s' },
      run: async (ctx) => {
        ctx.log.info({ tenant: ctx.item.tenant }, 'extracting customers');
        console.log(`read 1200 rows for ${ctx.item.tenant}`);
        process.stdout.write(`connecting to postgres://etl:s3cret@hub.internal/master (try ${ctx.tryNumber})\n`);
        if (ctx.item.tenant === 'globex' && ctx.tryNumber === 1) throw new Error('globex: connection reset by peer');
        ctx.log.warn('2 customers rejected: missing tax id');
      },
    }),
  },
});

describe.skipIf(missing !== undefined)('the log page in a browser', () => {
  let rt: TestRuntime;
  let worker: Executor;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  let runId: number;

  beforeAll(async () => {
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 4 });
    const run = await rt.engine.triggerRun('ui-logs', { logicalDate: new Date('2026-11-01T02:00:00Z') });
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

  const shownLines = () =>
    page.locator('pre.log .ln').evaluateAll((ls) => ls.map((l) => [l.getAttribute('data-level'), l.textContent?.replace(/^\d\d:\d\d:\d\d /, '')]));

  it('is opened from the run page, showing the latest try of the instance, secrets masked', async () => {
    await page.goto(`${server.url}/runs/${runId}`);
    await page.locator('tr[data-task="load"][data-item="globex"]').getByRole('link', { name: 'log', exact: true }).click();
    expect(new URL(page.url()).pathname + new URL(page.url()).search).toBe(`/runs/${runId}/tasks/load/logs?map=1`);
    await expect(page.locator('h1').textContent()).resolves.toMatch(/^Log of load globex try 2 success$/);
    expect(await shownLines()).toEqual([
      ['info', 'info extracting customers {"tenant":"globex"}'],
      ['info', 'info read 1200 rows for globex'],
      ['stdout', 'stdout connecting to postgres://etl:***@hub.internal/master (try 2)'],
      ['warn', 'warn 2 customers rejected: missing tax id'],
    ]);
  });

  it('switches to the failed try and to another instance by their links', async () => {
    await page.locator('.tries').getByRole('link', { name: /try 1/ }).click();
    expect(new URL(page.url()).searchParams.get('try')).toBe('1');
    const lines = await shownLines();
    expect(lines.map(([level]) => level)).toEqual(['info', 'info', 'stdout', 'error']);
    expect(lines[3]![1]).toMatch(/^error try 1 of 2 failed: Error: globex: connection reset by peer\n\s+at /);
    await expect(page.locator('.ln[data-level="error"] .lv').evaluate((e) => getComputedStyle(e).color)).resolves.toBe('rgb(185, 28, 28)');
    await screenshot(page, 'log');

    await page.locator('.instances').getByRole('link', { name: /acme/ }).click();
    await expect(page.locator('h1').textContent()).resolves.toMatch(/^Log of load acme try 1 success$/);
    expect((await shownLines()).at(-1)).toEqual(['warn', 'warn 2 customers rejected: missing tax id']);
  });

  it('answers 404 for a task the run does not have', async () => {
    const res = await page.goto(`${server.url}/runs/${runId}/tasks/nope/logs`);
    expect(res?.status()).toBe(404);
    await expect(page.locator('body').textContent()).resolves.toContain(`run ${runId} (DAG 'ui-logs') has no task 'nope'`);
  });
});
