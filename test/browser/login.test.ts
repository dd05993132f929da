import { fileURLToPath } from 'node:url';
import type { Browser, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadDags } from '../../server/engine/loader.ts';
import { startServer, type RunningServer } from '../../server/http/server.ts';
import { testRuntime, type TestRuntime } from '../support.ts';
import { browserMissing, launchBrowser, screenshot } from './browser.ts';

const missing = browserMissing();
if (missing) console.warn(`page tests skipped: ${missing}`);

const dags = fileURLToPath(new URL('./gantt-dags/', import.meta.url));
const TOKEN = 'browser-token-0123456789abcdef';

describe.skipIf(missing !== undefined)('the login page in a browser', () => {
  let rt: TestRuntime;
  let server: RunningServer;
  let browser: Browser;
  let page: Page;

  beforeAll(async () => {
    rt = await testRuntime(await loadDags(dags), { HUBFLOW_API_TOKEN: TOKEN });
    server = await startServer({ ...rt, config: { ...rt.config, HUBFLOW_HOST: '127.0.0.1', HUBFLOW_PORT: 0 } });
    browser = await launchBrowser();
    page = await browser.newPage({ viewport: { width: 1000, height: 500 } });
  });
  afterAll(async () => {
    await browser?.close();
    await server?.close();
    await rt?.close();
  });

  it('shows an error for a wrong token and stays on the form', async () => {
    await page.goto(`${server.url}/dags/ui-gantt`);
    await expect(page.locator('h1').textContent()).resolves.toBe('Log in');
    await page.getByLabel('Token').fill('not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await expect(page.getByRole('alert').textContent()).resolves.toBe('That token is not valid.');
    await expect(page.locator('h1').textContent()).resolves.toBe('Log in');
    await screenshot(page, 'login');
  });

  it('lands on the page it was opening once the token is entered, and stays logged in', async () => {
    await page.goto(`${server.url}/dags/ui-gantt?runs=5`);
    await page.getByLabel('Token').fill(TOKEN);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.waitForURL(`${server.url}/dags/ui-gantt?runs=5`);
    await expect(page.locator('h1').textContent()).resolves.toBe('DAG ui-gantt');
    const res = await page.goto(`${server.url}/`);
    expect(res?.status()).toBe(200);
  });
});
