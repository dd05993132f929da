import { createServer, type Server } from 'node:http';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import { defineDag, PermanentError, task } from 'hubflow';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Executor } from '../../server/engine/executor.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { startWorker } from '../../server/processes.ts';
import { taskStates, testRuntime, waitForRun, type TestRuntime } from '../support.ts';
import { browserMissing, launchBrowser, SCREENSHOTS, screenshot } from './browser.ts';

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);

const TOKEN = 'operator-token-0123456789abcdef';
const READ = 'read-only-token-0123456789abcdef';

/** Tenants fail while named in `failing`, or when the run's conf names one. */
const failing = new Set<string>();
const dag = defineDag({
  id: 'ui-actions',
  description: 'a fan over tenants, then a load',
  retry: { attempts: 1 },
  tasks: {
    tenants: task({ run: () => [{ tenant: 'acme' }, { tenant: 'globex' }] }),
    extract: task<{ tenant: string }>({
      map: 'tenants',
      run: (ctx) => {
        if (failing.has(ctx.item.tenant) || ctx.conf.fail === ctx.item.tenant) throw new PermanentError(`tenant ${ctx.item.tenant}: source unreachable`);
        return ctx.item.tenant;
      },
    }),
    load: task({ after: ['extract'], run: () => 'loaded' }),
  },
});

async function until(check: () => Promise<boolean>, what: string, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

describe.skipIf(missing !== undefined)('action buttons in a browser', () => {
  let rt: TestRuntime;
  let worker: Executor;
  let open: RunningServer;
  let guarded: RunningServer;
  let foreign: Server;
  let foreignUrl: string;
  let browser: Browser;
  let page: Page;
  let day = 0;

  beforeAll(async () => {
    rt = await testRuntime([dag]);
    worker = startWorker(rt, { concurrency: 4 });
    // Loopback without a token: anyone here may act. And the same store behind tokens.
    open = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    guarded = await startServer({
      ...rt,
      config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0, HUBFLOW_API_TOKEN: TOKEN, HUBFLOW_API_READ_TOKEN: READ },
    });
    // Another site, whose page tries to act on hubflow.
    foreign = createServer((_req, res) => res.writeHead(200, { 'content-type': 'text/html' }).end('<!doctype html><title>elsewhere</title><p>elsewhere</p>'));
    await new Promise<void>((resolve) => foreign.listen(0, '127.0.0.1', resolve));
    foreignUrl = `http://localhost:${(foreign.address() as AddressInfo).port}`;
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('dialog', (dialog) => void dialog.accept());
  });
  afterAll(async () => {
    await browser?.close();
    foreign?.close();
    await guarded?.close();
    await open?.close();
    await worker?.close();
    await rt?.close();
  });

  const runOf = (id: number) => rt.db.selectFrom('dag_runs').selectAll().where('id', '=', id).executeTakeFirstOrThrow();
  const paused = async () => (await rt.db.selectFrom('dags').select('is_paused').where('dag_id', '=', 'ui-actions').executeTakeFirstOrThrow()).is_paused;
  /** A click's action lands after the click returns: wait for the store to say what it did. */
  const ends = (id: number, state: string) => until(async () => (await runOf(id)).state === state, `run ${id} to end ${state}`);
  const failedRun = async (): Promise<number> => {
    const run = await rt.engine.triggerRun('ui-actions', { logicalDate: new Date(Date.UTC(2026, 2, ++day)) });
    expect((await waitForRun(rt, run.id)).state).toBe('failed');
    return run.id;
  };

  it('triggers a run with the conf typed in, after refusing one that is not a JSON object', async () => {
    await page.goto(`${open.url}/dags/ui-actions`);
    const before = (await rt.db.selectFrom('dag_runs').select('id').execute()).length;
    await page.locator('#trigger-conf').fill('{"fail": globex}');
    await page.locator('button[data-name="trigger"]').click();
    await expect(page.locator('#action-status').textContent()).resolves.toMatch(/^conf is not JSON/);
    await page.locator('#trigger-conf').fill('["globex"]');
    await page.locator('button[data-name="trigger"]').click();
    await expect(page.locator('#action-status').textContent()).resolves.toMatch(/conf must be a JSON object/);
    expect(await rt.db.selectFrom('dag_runs').select('id').execute()).toHaveLength(before);

    await page.locator('#trigger-conf').fill('{"fail": "globex"}');
    await page
      .locator('div.actions')
      .first()
      .screenshot({ path: path.join(SCREENSHOTS, 'dag-page-actions.png') });
    await page.locator('button[data-name="trigger"]').click();
    await page.waitForURL(/\/runs\/\d+$/);
    const id = Number(new URL(page.url()).pathname.split('/').pop());
    expect((await runOf(id)).conf).toEqual({ fail: 'globex' });
    expect((await waitForRun(rt, id)).state).toBe('failed');
  });

  it('marks a failed tenant success from the run page: its dead letter is resolved, load runs, the run succeeds', async () => {
    const [latest] = await rt.db.selectFrom('dag_runs').select('id').orderBy('id', 'desc').limit(1).execute();
    const id = latest!.id;
    await page.goto(`${open.url}/runs/${id}`);
    expect(await taskStates(rt, id)).toMatchObject({ 'extract[1]': 'failed', load: 'upstream_failed' });
    await screenshot(page, 'run-page-actions');
    const reloaded = page.waitForEvent('load');
    await page.locator('span.actions-inline[data-task="extract"][data-map="1"] button[data-name="mark-success"]').click();
    await reloaded;
    await ends(id, 'success');
    expect(await taskStates(rt, id)).toMatchObject({ 'extract[1]': 'success', load: 'success' });
    const letters = await rt.db.selectFrom('dead_letters').select(['resolution', 'resolved_by']).where('run_id', '=', id).execute();
    expect(letters).toEqual([{ resolution: 'marked_success', resolved_by: 'http (loopback, no token) from 127.0.0.1' }]);
    // The page reloaded on its own: the tenant is success, so it offers no mark success any more.
    const globex = page.locator('span.actions-inline[data-task="extract"][data-map="1"]');
    await until(async () => (await globex.locator('button[data-name="mark-failed"]').count()) === 1, 'the page to reload');
    await expect(globex.locator('button[data-name="mark-success"]').count()).resolves.toBe(0);
  });

  it('clears the failed tasks of a run, which then succeeds', async () => {
    failing.add('acme');
    const id = await failedRun();
    failing.delete('acme');
    await page.goto(`${open.url}/runs/${id}`);
    // The page reloads once the action is done: wait for it, so the next test's navigation is not cut short.
    const reloaded = page.waitForEvent('load');
    await page.locator('#run-actions button[data-name="clear-failed"]').click();
    await reloaded;
    await ends(id, 'success');
    const tries = await rt.db
      .selectFrom('task_instances')
      .select(['task_id', 'map_index', 'try_number'])
      .where('run_id', '=', id)
      .orderBy('map_index')
      .execute();
    // The mapped task ran again whole, its source did not.
    expect(tries.map((t) => `${t.task_id}${t.map_index >= 0 ? `[${t.map_index}]` : ''}:${t.try_number}`).sort()).toEqual([
      'extract[0]:2',
      'extract[1]:1',
      'load:1',
      'tenants:1',
    ]);
  });

  it('pauses and unpauses the DAG', async () => {
    await page.goto(`${open.url}/dags/ui-actions`);
    await page.locator('button[data-name="pause"]').click();
    await until(paused, 'the DAG to be paused');
    await page.waitForSelector('button[data-name="unpause"]');
    await expect(page.locator('#pause-state').textContent()).resolves.toMatch(/^paused/);
    await page.locator('button[data-name="unpause"]').click();
    await until(async () => !(await paused()), 'the DAG to be unpaused');
    await page.waitForSelector('button[data-name="pause"]');
  });

  it('lists open dead letters by DAG with their tenant, and replays the selected ones in bulk', async () => {
    failing.add('globex');
    const runs = [await failedRun(), await failedRun()];
    failing.delete('globex');
    await page.goto(`${open.url}/`);
    await page.getByRole('link', { name: 'dead letters' }).click();
    await page.locator('#dag-filter').getByRole('link', { name: 'ui-actions' }).click();
    expect(new URL(page.url()).search).toBe('?dag=ui-actions');
    const rows = page.locator('table#dead-letters tr[data-letter]');
    await expect(rows.count()).resolves.toBe(2);
    await expect(rows.first().textContent()).resolves.toContain('extract[globex]');
    await screenshot(page, 'dead-letters');

    await page.locator('input[data-all]').check();
    await page.locator('button[data-name="replay-selected"]').click();
    for (const id of runs) await ends(id, 'success');
    const letters = await rt.db.selectFrom('dead_letters').select('resolution').where('run_id', 'in', runs).execute();
    expect(letters.map((l) => l.resolution)).toEqual(['replayed', 'replayed']);
    await until(async () => (await page.locator('table#dead-letters').count()) === 0, 'the page to show no open letters');
    await expect(page.locator('main, body').first().textContent()).resolves.toContain('No open dead letters.');
  });

  it('shows no button to the read-only token, and acts for the operator token from its cookie', async () => {
    failing.add('acme');
    const id = await failedRun();
    failing.delete('acme');
    const reader = await browser.newPage();
    await reader.goto(`${guarded.url}/runs/${id}?token=${READ}`);
    await expect(reader.locator('h1').textContent()).resolves.toMatch(new RegExp(`^Run ${id} of ui-actions`));
    await expect(reader.locator('button').count()).resolves.toBe(0);
    // The live refresh may run for a reader; the buttons' script is not sent at all.
    const scripts = await reader.locator('script').allTextContents();
    expect(scripts.filter((text) => text.includes('button[data-url]'))).toEqual([]);
    for (const path of ['/dags/ui-actions', '/dead-letters']) {
      await reader.goto(`${guarded.url}${path}`);
      await expect(reader.locator('button').count(), path).resolves.toBe(0);
      await expect(reader.locator('input[type=checkbox]').count(), path).resolves.toBe(0);
    }
    await reader.close();

    const operator = await browser.newPage();
    operator.on('dialog', (dialog) => void dialog.accept());
    await operator.goto(`${guarded.url}/dags/ui-actions?token=${TOKEN}`);
    await operator.locator('button[data-name="pause"]').click();
    await until(paused, 'the operator to pause the DAG');
    await operator.waitForSelector('button[data-name="unpause"]');
    await operator.goto(`${guarded.url}/runs/${id}`);
    await operator.locator('#run-actions button[data-name="mark-run-success"]').click();
    await ends(id, 'success');
    await operator.waitForSelector('#run-actions button[data-name="mark-run-failed"]');
    await until(async () => (await operator.locator('button[data-name="mark-run-success"]').count()) === 0, 'the run page to reload');
    await operator.goto(`${guarded.url}/dags/ui-actions`);
    await operator.locator('button[data-name="unpause"]').click();
    await until(async () => !(await paused()), 'the operator to unpause the DAG');
    await operator.waitForSelector('button[data-name="pause"]');
    await operator.close();
  });

  it('refuses a POST another site makes, as a form or by fetch, changing nothing', async () => {
    const elsewhere = await browser.newPage();
    await elsewhere.goto(foreignUrl);
    const target = `${open.url}/api/dags/ui-actions/pause`;
    // fetch() without a preflight (no JSON type), and a plain form post, both carrying this site's Origin.
    await elsewhere.evaluate(
      (url) =>
        fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body: '{}' }).then(() => undefined),
      target,
    );
    const answer = elsewhere.waitForResponse(target);
    await elsewhere.evaluate((url) => {
      const doc = (
        globalThis as unknown as { document: { createElement(t: string): Record<string, unknown> & { submit(): void }; body: { append(e: unknown): void } } }
      ).document;
      const form = doc.createElement('form');
      form.method = 'POST';
      form.action = url;
      doc.body.append(form);
      form.submit();
    }, target);
    expect((await answer).status()).toBe(403);
    expect(await paused()).toBe(false);
    await elsewhere.close();
  });
});
