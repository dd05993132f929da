import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

/** Where page tests leave their screenshots: git-ignored, kept by CI as artefacts. */
export const SCREENSHOTS = fileURLToPath(new URL('../../test-artifacts/screenshots/', import.meta.url));

/** The system's chromium: HUBFLOW_CHROMIUM, else `chromium` or `chromium-browser` on PATH. */
export function findChromium(): string | undefined {
  const given = process.env.HUBFLOW_CHROMIUM;
  if (given) return existsSync(given) ? given : undefined;
  for (const name of ['chromium', 'chromium-browser']) {
    const found = spawnSync('sh', ['-c', `command -v ${name}`], { encoding: 'utf8' }).stdout.trim();
    if (found) return found;
  }
  return undefined;
}

/** Why the page tests cannot run here, or undefined when they can. */
export function browserMissing(): string | undefined {
  if (findChromium()) return undefined;
  return process.env.HUBFLOW_CHROMIUM
    ? `HUBFLOW_CHROMIUM=${process.env.HUBFLOW_CHROMIUM} does not exist`
    : 'no chromium on PATH (apt-get install chromium, or set HUBFLOW_CHROMIUM)';
}

export async function launchBrowser(): Promise<Browser> {
  const executablePath = findChromium();
  if (!executablePath) throw new Error(browserMissing());
  // The sandbox needs user namespaces a root CI container does not have.
  return chromium.launch({ executablePath, args: ['--no-sandbox'] });
}

/** Saves a full-page screenshot as test-artifacts/screenshots/<name>.png. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOTS, { recursive: true });
  const file = path.join(SCREENSHOTS, `${name}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}
