import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defineDag, task } from 'hubflow';
import { loadDags } from '../../server/engine/loader.ts';
import { randomUUID } from 'node:crypto';
import pg from 'pg';
import { TEST_DATABASE_URL, TEST_REDIS_URL } from '../support.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

const good = `import { defineDag, task } from 'hubflow';
export default defineDag({ id: 'good', tasks: { a: task({ run: () => 1 }) } });`;

const bad: Record<string, [string, string]> = {
  'cycle.ts': [
    `tasks: { a: task({ after: ['c'], run }), b: task({ after: ['a'], run }), c: task({ after: ['b'], run }) }`,
    "cycle.ts: dag 'bad': tasks.a.after: cycle: a -> b -> c -> a",
  ],
  'unknown-upstream.ts': [`tasks: { a: task({ after: ['extract'], run }) }`, "unknown-upstream.ts: dag 'bad': tasks.a.after: unknown task 'extract'"],
  'bad-cron.ts': [
    `schedule: { cron: '61 2 * * *', timezone: 'Europe/London' }, tasks: { a: task({ run }) }`,
    "bad-cron.ts: dag 'bad': schedule.cron:",
  ],
  'bad-zone.ts': [
    `schedule: { cron: '0 2 * * *', timezone: 'Europe/Londn' }, tasks: { a: task({ run }) }`,
    "bad-zone.ts: dag 'bad': schedule.timezone:",
  ],
  'unknown-option.ts': [`tasks: { a: task({ run, retires: 3 }) }`, "unknown-option.ts: dag 'bad': tasks.a.retires: unknown option"],
  'bad-rule.ts': [`tasks: { a: task({ run, trigger: 'always' }) }`, "bad-rule.ts: dag 'bad': tasks.a.trigger:"],
};

function dagFolder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-dags-'));
  writeFileSync(path.join(dir, 'good.ts'), good);
  writeFileSync(path.join(dir, 'duplicate.ts'), good);
  writeFileSync(path.join(dir, 'syntax.ts'), `import { defineDag } from 'hubflow';\nexport default defineDag({ id: 'x', tasks: {`);
  for (const [file, [body]] of Object.entries(bad)) {
    writeFileSync(path.join(dir, file), `import { defineDag, task } from 'hubflow';\nconst run = () => null;\nexport default defineDag({ id: 'bad', ${body} });\n`);
  }
  return dir;
}

describe('defineDag', () => {
  it('rejects a retry cap below its base and a mapped task over an unknown list', () => {
    expect(() => defineDag({ id: 'r', retry: { baseMs: 5_000, maxMs: 1_000 }, tasks: { a: task({ run: () => 1 }) } })).toThrow(
      "dag 'r': tasks.a.retry.maxMs: must be at least baseMs (5000)",
    );
    expect(() => defineDag({ id: 'm', tasks: { a: task({ map: 'tenants', run: () => 1 }) } })).toThrow("dag 'm': tasks.a.map: unknown task 'tenants'");
  });
});

describe('loading a folder of DAG files', () => {
  it('reports each bad file with its file, DAG and field, and still loads the good one', async () => {
    const dir = dagFolder();
    const registry = await loadDags(dir);
    expect([...registry.dags.keys()]).toEqual(['good']);
    const messages = registry.errors.map((e) => e.message);
    for (const [, expected] of Object.values(bad)) {
      expect(messages.some((m) => m.includes(expected))).toBe(true);
    }
    expect(messages.some((m) => m.includes("good.ts: dag 'good': id: duplicate DAG id, already defined in") || m.includes("duplicate.ts: dag 'good': id: duplicate DAG id"))).toBe(true);
    expect(messages.some((m) => /syntax\.ts: dag \(unknown id\): \(module\): cannot be loaded/.test(m))).toBe(true);
    expect(registry.errors).toHaveLength(Object.keys(bad).length + 2);
  });

  it('`hubflow dags list` prints the errors and exits 1, from a folder with no node_modules', async () => {
    const dir = dagFolder();
    const schema = `t_${randomUUID().replaceAll('-', '').slice(0, 12)}`;
    const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), 'dags', 'list', '--json'], {
      env: {
        ...process.env,
        HUBFLOW_DAGS_DIR: dir,
        HUBFLOW_DATABASE_URL: TEST_DATABASE_URL,
        HUBFLOW_REDIS_URL: TEST_REDIS_URL,
        HUBFLOW_DB_SCHEMA: schema,
        HUBFLOW_LOG_LEVEL: 'silent',
      },
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(result.status).toBe(1);
    const out = JSON.parse(result.stdout) as { dags: { dag: string }[]; errors: { file: string; field: string; error: string }[] };
    expect(out.dags.map((d) => d.dag)).toEqual(['good']);
    expect(out.errors).toContainEqual(expect.objectContaining({ field: 'tasks.a.after', error: "unknown task 'extract'" }));
    const client = new pg.Client(TEST_DATABASE_URL);
    await client.connect();
    await client.query(`drop schema if exists ${schema} cascade`);
    await client.end();
  });
});
