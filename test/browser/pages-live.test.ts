import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { defineDag, task } from 'hubflow';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { seedFilingRun } from '../http/filing-fixture.ts';
import { testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { browserMissing, launchBrowser, screenshot } from './browser.ts';

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);

/** A task that holds its run open until the file its conf names exists: the test decides when the run ends. */
const gated = defineDag({
  id: 'ui-live',
  description: 'waits at a gate, then loads each tenant',
  schedule: { cron: '0 4 * * *', timezone: 'Europe/Paris' },
  deadline: '2h',
  tasks: {
    tenants: task({ run: () => [{ tenant: 'acme' }, { tenant: 'globex' }] }),
    gate: task({
      after: ['tenants'],
      run: async (ctx) => {
        const file = String(ctx.conf.gate ?? '');
        while (file && !existsSync(file)) {
          if (ctx.signal.aborted) throw new Error('aborted at the gate');
          await new Promise((r) => setTimeout(r, 50));
        }
        return 'open';
      },
    }),
    load: task<{ tenant: string }>({ map: 'tenants', after: ['gate'], run: (ctx) => ctx.item.tenant }),
  },
});
const filing = defineDag({
  id: 'ui-filing',
  tasks: {
    plan: task({ run: () => [] }),
    render: task({ map: 'plan', run: () => null }),
    deliver: task({ map: 'render', trigger: 'all_done', run: () => null }),
  },
});

describe.skipIf(missing !== undefined)('the run pages in a browser', () => {
  let rt: TestRuntime;
  let worker: Executor;
  let server: RunningServer;
  let browser: Browser;
  let dir: string;
  const done: number[] = [];
  const open = async (url: string): Promise<Page> => {
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    await page.goto(`${server.url}${url}`);
    return page;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(tmpdir(), 'hubflow-live-'));
    rt = await testRuntime([gated, filing], { HUBFLOW_OUTBOX_DIR: path.join(dir, 'outbox') });
    worker = startWorker(rt, { concurrency: 4 });
    for (const day of ['2026-03-01', '2026-03-02']) {
      const run = await rt.engine.triggerRun('ui-live', { logicalDate: new Date(`${day}T03:00:00Z`) });
      expect((await waitForRun(rt, run.id)).state).toBe('success');
      done.push(run.id);
    }
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    browser = await launchBrowser();
  }, 60_000);
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await worker?.close();
    await rt?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('filters the runs list through its form, and keeps the filters when paging', async () => {
    const page = await open('/');
    await page.selectOption('select[name="dag"]', 'ui-live');
    await page.selectOption('select[name="state"]', 'success');
    await page.fill('input[name="from"]', '2026-03-01');
    await page.fill('input[name="to"]', '2026-03-02');
    await page.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(/state=success/);
    const url = new URL(page.url());
    expect(Object.fromEntries(url.searchParams)).toEqual({ dag: 'ui-live', state: 'success', type: '', from: '2026-03-01', to: '2026-03-02' });
    const shown = async () => (await page.locator('table.runs tr[data-run]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-run')))).map(Number);
    expect(await shown()).toEqual([...done].reverse());
    await screenshot(page, 'runs-filtered');

    await page.goto(`${server.url}/?dag=ui-live&limit=1`);
    expect(await shown()).toEqual([done[1]]);
    await page.getByRole('link', { name: 'older runs' }).click();
    expect(await shown()).toEqual([done[0]]);
    expect(new URL(page.url()).searchParams.get('dag')).toBe('ui-live');
    await page.close();
  });

  it("shows a run's state change on its page, the runs list and the grid without reloading them", async () => {
    const gate = path.join(dir, 'gate');
    const run = await rt.engine.triggerRun('ui-live', { logicalDate: new Date('2026-03-03T03:00:00Z'), conf: { gate } });
    const runPage = await open(`/runs/${run.id}`);
    const list = await open('/?dag=ui-live');
    const grid = await open('/dags/ui-live?expand=load');
    const badge = runPage.locator('#run-state .state');
    const listBadge = list.locator(`tr[data-run="${run.id}"] .state`);
    const gateCell = grid.locator('tr[data-task="gate"] td.cell').last();
    await expect(badge.textContent()).resolves.toMatch(/queued|running/);
    // Marks that a reload would wipe out.
    for (const p of [runPage, list, grid]) await p.evaluate('window.__stayed = 42');

    await writeFile(gate, 'open');
    await waitForRun(rt, run.id);
    // The pages poll every few seconds: each changes in place.
    const live = { timeout: 20_000, interval: 250 };
    await expect.poll(() => badge.textContent(), live).toBe('success');
    await expect.poll(() => listBadge.textContent(), live).toBe('success');
    await expect.poll(() => gateCell.getAttribute('data-state'), live).toBe('success');
    for (const p of [runPage, list, grid]) await expect(p.evaluate('window.__stayed')).resolves.toBe(42);

    // Mapped instances are named by their tenant on the run page and in the grid's rows.
    const items = await runPage.locator('tr[data-task="load"]').evaluateAll((rows) => rows.map((r) => r.getAttribute('data-item')));
    expect(items).toEqual(['acme', 'globex']);
    await screenshot(runPage, 'run-page-live');
    await expect(grid.locator('tr.item[data-task="load"] th').allTextContents()).resolves.toEqual(['↳ acme', '↳ globex']);
    await screenshot(grid, 'grid-live');

    // A cell leads to the instance's row on the run page.
    await grid.locator('tr.item[data-item="globex"] td.cell a').last().click();
    await grid.waitForURL(new RegExp(`/runs/${run.id}\\?task=load&index=1#ti-load-1$`));
    await expect(grid.locator('#ti-load-1').getAttribute('data-item')).resolves.toBe('globex');
    for (const p of [runPage, list, grid]) await p.close();
  }, 60_000);

  it('does not poll while its tab is hidden, and polls at once when it is shown again', async () => {
    const page = await open(`/runs/${done[0]}`);
    const polls: string[] = [];
    page.on('request', (r) => {
      if (new URL(r.url()).pathname.startsWith('/api/live/')) polls.push(r.url());
    });
    await expect.poll(() => polls.length, { timeout: 15_000 }).toBeGreaterThan(0);
    // As a browser reports a tab in the background.
    await page.evaluate("Object.defineProperty(document, 'hidden', { configurable: true, get: () => true })");
    await new Promise((r) => setTimeout(r, 300));
    const before = polls.length;
    await new Promise((r) => setTimeout(r, 6_000));
    expect(polls.length).toBe(before);
    await page.evaluate(
      "Object.defineProperty(document, 'hidden', { configurable: true, get: () => false }); document.dispatchEvent(new Event('visibilitychange'))",
    );
    await expect.poll(() => polls.length, { timeout: 2_000 }).toBeGreaterThan(before);
    await page.close();
  }, 40_000);

  it('shows the SLA misses and the outbox of a filing run', async () => {
    await rt.db
      .updateTable('dag_runs')
      .set({ sla_alerted_at: new Date(), sla_reason: 'finished at 2026-03-02T06:10:00.000Z, after its deadline (2026-03-02T05:00:00.000Z)' })
      .where('id', '=', done[1]!)
      .execute();
    const sla = await open('/sla');
    await expect(sla.locator('table.sla tr[data-run]').count()).resolves.toBe(1);
    await expect(sla.locator(`tr[data-run="${done[1]}"] td.err`).textContent()).resolves.toContain('after its deadline');
    await screenshot(sla, 'sla');
    await sla.close();

    const run = await rt.engine.triggerRun('ui-filing', { logicalDate: new Date('2026-01-01T06:00:00Z') });
    await waitForRun(rt, run.id);
    await seedFilingRun(rt, run.id, path.join(dir, 'outbox'));
    const page = await open(`/runs/${run.id}`);
    await page.getByRole('link', { name: 'files, totals and sha256' }).click();
    expect(new URL(page.url()).pathname).toBe(`/runs/${run.id}/outbox`);
    const statuses = await page
      .locator('section.filing')
      .evaluateAll((s) => s.map((x) => [x.getAttribute('data-filing'), x.getAttribute('data-status'), x.getAttribute('data-late')]));
    expect(statuses).toEqual([
      ['us-efw2/2025/acme', 'delivered', 'false'],
      ['gb-rti-fps/2025-26-M09/globex', 'delivered', 'true'],
      ['ca-t4/2025/initech', 'not delivered', 'true'],
    ]);
    await screenshot(page, 'outbox');
    await page.close();
  }, 60_000);
});
