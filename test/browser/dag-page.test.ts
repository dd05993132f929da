import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { loadDags } from '../../server/engine/loader.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { browserMissing, launchBrowser, SCREENSHOTS, screenshot } from './browser.ts';

// The browser's own, inside page.evaluate callbacks (the project compiles without the DOM library).
declare function getComputedStyle(element: unknown): { backgroundColor: string; fill: string };

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);

const dags = fileURLToPath(new URL('./dags/', import.meta.url));

describe.skipIf(missing !== undefined)('the DAG page in a browser', () => {
  let rt: TestRuntime;
  let worker: Executor;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;
  const runs: number[] = [];

  beforeAll(async () => {
    rt = await testRuntime(await loadDags(dags));
    worker = startWorker(rt, { concurrency: 4 });
    // A run that succeeds, then one whose globex extract fails: the latest run is the failed one.
    const good = await rt.engine.triggerRun('ui-tenants', { logicalDate: new Date('2026-11-01T02:00:00Z') });
    expect((await waitForRun(rt, good.id)).state).toBe('success');
    const bad = await rt.engine.triggerRun('ui-tenants', { logicalDate: new Date('2026-11-02T02:00:00Z'), conf: { fail: 'globex' } });
    expect((await waitForRun(rt, bad.id)).state).toBe('failed');
    runs.push(good.id, bad.id);
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await worker?.close();
    await rt?.close();
  });

  it('is linked from the DAG list and shows the schedule with its next ticks in the DAG zone, resources, window, deadline, owner and source', async () => {
    await page.goto(`${server.url}/`);
    await page.getByRole('link', { name: 'ui-tenants' }).click();
    expect(new URL(page.url()).pathname).toBe('/dags/ui-tenants');
    await expect(page.locator('h1').textContent()).resolves.toBe('DAG ui-tenants');
    const facts = page.locator('dl');
    await expect(facts.textContent()).resolves.toMatch(/Ownermdm-team/);
    await expect(facts.textContent()).resolves.toMatch(/Start window02:30–05:00 \(Europe\/Berlin\)/);
    await expect(facts.textContent()).resolves.toMatch(/Deadline6h after the logical date/);
    await expect(page.locator('#pause-state').textContent()).resolves.toBe('active');
    // Berlin's 03:00, in winter and summer time alike, one a day.
    const ticks = await page.locator('ol.ticks time').allTextContents();
    expect(ticks).toHaveLength(5);
    for (const tick of ticks) expect(tick).toMatch(/^\d{4}-\d\d-\d\d 03:00 (CET|CEST|GMT\+[12])$/);
    const days = ticks.map((t) => t.slice(0, 10));
    expect(new Set(days).size).toBe(5);
    const resources = await page.locator('table', { hasText: 'ui-warehouse' }).textContent();
    expect(resources).toContain('year-end freeze');
    expect(resources).toContain('load');
    await expect(page.locator('pre.source').textContent()).resolves.toContain("id: 'ui-tenants'");
    await screenshot(page, 'dag-page');
  });

  it('shows the pause state the scheduler reads', async () => {
    await rt.db.updateTable('dags').set({ is_paused: true }).where('dag_id', '=', 'ui-tenants').execute();
    await page.goto(`${server.url}/dags/ui-tenants`);
    await expect(page.locator('#pause-state').textContent()).resolves.toMatch(/^paused/);
    await expect(page.locator('h1 .paused').textContent()).resolves.toBe('paused');
    await rt.db.updateTable('dags').set({ is_paused: false }).where('dag_id', '=', 'ui-tenants').execute();
  });

  it('grids the runs by task, coloured by state, a mapped task in one cell that expands into its tenants', async () => {
    await page.goto(`${server.url}/dags/ui-tenants`);
    const grid = page.locator('table.grid');
    await expect(grid.locator('th.run a').allTextContents()).resolves.toEqual(runs.map(String));
    const states = (task: string) => grid.locator(`tr[data-task="${task}"] td.cell`).evaluateAll((cells) => cells.map((c) => c.getAttribute('data-state')));
    await expect(states('tenants')).resolves.toEqual(['success', 'success']);
    await expect(states('load')).resolves.toEqual(['success', 'upstream_failed']);
    await expect(states('report')).resolves.toEqual(['success', 'success']);
    // The mapped task: one cell per run, its colour the worst state, its counts inside.
    await expect(states('extract')).resolves.toEqual(['success', 'failed']);
    const failedCell = grid.locator('tr[data-task="extract"] td.cell').nth(1);
    await expect(failedCell.getAttribute('title')).resolves.toBe(`run ${runs[1]} · extract: 1 failed, 2 success`);
    await expect(failedCell.locator('span.n').allTextContents()).resolves.toEqual(['1', '2']);
    const red = await failedCell.evaluate((c) => getComputedStyle(c).backgroundColor);
    const green = await grid
      .locator('tr[data-task="tenants"] td.cell')
      .first()
      .evaluate((c) => getComputedStyle(c).backgroundColor);
    expect(red).not.toBe(green);
    await grid.locator('tr[data-task="extract"] a.toggle').click();
    await expect(page.locator('table.grid tr.item th').allTextContents()).resolves.toEqual(['↳ acme', '↳ globex', '↳ initech']);
    const byTenant = await page
      .locator('table.grid tr.item')
      .evaluateAll((rows) => rows.map((r) => [r.getAttribute('data-item'), [...r.querySelectorAll('td')].map((c) => c.getAttribute('data-state'))]));
    expect(byTenant).toEqual([
      ['acme', ['success', 'success']],
      ['globex', ['success', 'failed']],
      ['initech', ['success', 'success']],
    ]);
    await page.locator('.gridwrap').screenshot({ path: path.join(SCREENSHOTS, 'grid.png') });
    await page.locator('table.grid tr[data-task="extract"] a.toggle', { hasText: 'collapse' }).click();
    await expect(page.locator('table.grid tr.item').count()).resolves.toBe(0);
  });

  it('draws the DAG as boxes in layers with edges, coloured by the latest run', async () => {
    await page.goto(`${server.url}/dags/ui-tenants`);
    const graph = page.locator('svg.graph');
    const nodes = await graph
      .locator('g.node')
      .evaluateAll((gs) =>
        gs.map((g) => ({ task: g.getAttribute('data-task'), state: g.getAttribute('data-state'), cls: g.getAttribute('class'), text: g.textContent?.trim() })),
      );
    expect(nodes.map((n) => [n.task, n.state])).toEqual([
      ['tenants', 'success'],
      ['extract', 'failed'],
      ['load', 'upstream_failed'],
      ['report', 'success'],
    ]);
    expect(nodes.find((n) => n.task === 'extract')?.cls).toBe('node s-failed');
    expect(nodes.find((n) => n.task === 'extract')?.text).toContain('failed · 3 mapped');
    const edges = await graph.locator('path.edge').evaluateAll((ps) => ps.map((p) => `${p.getAttribute('data-from')}->${p.getAttribute('data-to')}`));
    expect(edges).toEqual(['tenants->extract', 'extract->load', 'load->report']);
    // Left to right by layer, and the failed box drawn in another colour than a successful one.
    const boxes = await graph.locator('g.node rect').evaluateAll((rs) => rs.map((r) => ({ x: r.getBoundingClientRect().x, fill: getComputedStyle(r).fill })));
    expect(boxes.map((b) => b.x)).toEqual([...boxes.map((b) => b.x)].sort((a, b) => a - b));
    expect(new Set(boxes.map((b) => b.x)).size).toBe(4);
    expect(boxes[1]!.fill).not.toBe(boxes[0]!.fill);
    expect(boxes[3]!.fill).toBe(boxes[0]!.fill);
    await graph.screenshot({ path: path.join(SCREENSHOTS, 'graph.png') });
  });

  it('is linked from each run page', async () => {
    await page.goto(`${server.url}/runs/${runs[1]}`);
    await screenshot(page, 'run-page');
    await page.locator('h1').getByRole('link', { name: 'ui-tenants' }).click();
    expect(new URL(page.url()).pathname).toBe('/dags/ui-tenants');
  });

  it('answers 404 for a DAG that is not loaded', async () => {
    const res = await page.goto(`${server.url}/dags/no-such-dag`);
    expect(res?.status()).toBe(404);
    await expect(page.locator('h1').textContent()).resolves.toBe('No DAG no-such-dag is loaded');
  });
});
