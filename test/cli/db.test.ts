import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { resolvePostgres } from '../../server/connections/postgres.ts';
import { TEST_DATABASE_URL } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));
const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) await rm(home, { recursive: true, force: true });
});

/** Runs the real `hubflow` command with only the given settings. */
function hubflow(env: Record<string, string>, ...args: string[]) {
  const clean = Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith('HUBFLOW_') && !key.startsWith('SNOWFLAKE_')));
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), 'db', 'url', ...args], {
    env: { ...clean, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout.trim(), stderr: result.stderr };
}

async function ask(url: string, query: string): Promise<unknown> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(query)).rows[0];
  } finally {
    await client.end();
  }
}

describe('hubflow db url', () => {
  it('prints the configured URL with its password masked unless asked, opening in the schema asked for', async () => {
    const env = {
      HUBFLOW_DATABASE_URL: 'postgres://owner:s3cret@db.example:5432/hubflow',
      HUBFLOW_WAREHOUSE_URL: TEST_DATABASE_URL,
      HUBFLOW_WAREHOUSE_SCHEMA: 'wh_analyst',
    };
    const store = hubflow(env);
    expect(store).toMatchObject({ status: 0, stdout: 'postgres://owner:***@db.example:5432/hubflow?options=-csearch_path%3Dhubflow' });
    expect(store.stderr).toContain('--show-password');
    expect(hubflow(env, '--hub', '--show-password').stdout).toBe('postgres://owner:s3cret@db.example:5432/hubflow?options=-csearch_path%3Dhub');

    const warehouse = hubflow(env, '--warehouse');
    expect(warehouse.status).toBe(0);
    expect(await ask(warehouse.stdout, 'show search_path')).toEqual({ search_path: 'wh_analyst' });
  });

  it('refuses two databases at once, and a Snowflake warehouse, exit 2', () => {
    expect(hubflow({}, '--hub', '--warehouse')).toMatchObject({ status: 2 });
    const snowflake = hubflow(
      {
        HUBFLOW_WAREHOUSE: 'snowflake',
        SNOWFLAKE_ACCOUNT: 'acme-x1',
        SNOWFLAKE_USER: 'u',
        SNOWFLAKE_PASSWORD: 'p',
        SNOWFLAKE_DATABASE: 'HIST',
        SNOWFLAKE_SCHEMA: 'PUBLIC',
        SNOWFLAKE_WAREHOUSE: 'WH',
      },
      '--warehouse',
    );
    expect(snowflake.status).toBe(2);
    expect(snowflake.stderr).toContain('the warehouse is Snowflake (account acme-x1, database HIST, schema PUBLIC)');
  });

  it('gives the running embedded PostgreSQL, on the same URL after a restart, and says when it is not running', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'hubflow-dburl-'));
    homes.push(home);
    const config = loadConfig({ HUBFLOW_HOME: home });
    const log = createLogger('silent');
    const env = { HUBFLOW_HOME: home };

    let db = await resolvePostgres(config, log);
    let url: string;
    try {
      const printed = hubflow(env, '--warehouse', '--show-password', '--json');
      expect(printed.status).toBe(0);
      const out = JSON.parse(printed.stdout) as { url: string; schema: string; source: string; passwordMasked: boolean };
      expect(out).toMatchObject({ schema: 'warehouse', source: 'embedded', passwordMasked: false });
      url = out.url;
      expect(await ask(url, 'select current_database() as db, current_setting($$search_path$$) as path')).toEqual({ db: 'hubflow', path: 'warehouse' });
      expect(hubflow(env).stdout).toMatch(/^postgres:\/\/hubflow:\*\*\*@127\.0\.0\.1:\d+\/hubflow\?/);
    } finally {
      await db.stop();
    }

    const stopped = hubflow(env);
    expect(stopped.status).toBe(2);
    expect(stopped.stderr).toContain('the embedded PostgreSQL under');
    expect(stopped.stderr).toContain('is not running');

    db = await resolvePostgres(config, log);
    try {
      expect(hubflow(env, '--warehouse', '--show-password').stdout).toBe(url);
    } finally {
      await db.stop();
    }
  });
});
