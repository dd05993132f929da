import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { defineDag, task, type TaskContext } from 'hubflow';
import { expectTypeOf } from 'vitest';
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
  'bad-cron.ts': [`schedule: { cron: '61 2 * * *', timezone: 'Europe/London' }, tasks: { a: task({ run }) }`, "bad-cron.ts: dag 'bad': schedule.cron:"],
  'seconds-cron.ts': [
    `schedule: { cron: '*/10 * * * * *', timezone: 'UTC' }, catchup: true, tasks: { a: task({ run }) }`,
    "seconds-cron.ts: dag 'bad': schedule.cron: '*/10 * * * * *' has a seconds field (6 fields, the first is seconds): use 5 fields, or set seconds: true if it is meant",
  ],
  'bad-zone.ts': [`schedule: { cron: '0 2 * * *', timezone: 'Europe/Londn' }, tasks: { a: task({ run }) }`, "bad-zone.ts: dag 'bad': schedule.timezone:"],
  'unknown-option.ts': [`tasks: { a: task({ run, retires: 3 }) }`, "unknown-option.ts: dag 'bad': tasks.a.retires: unknown option"],
  'old-millis.ts': [
    `retry: { attempts: 2, baseMs: 200 }, tasks: { a: task({ run }) }`,
    "old-millis.ts: dag 'bad': retry.baseMs: unknown option: durations are written one way now; use base, a duration such as '2s'",
  ],
  'bad-rule.ts': [`tasks: { a: task({ run, trigger: 'sometimes' }) }`, "bad-rule.ts: dag 'bad': tasks.a.trigger:"],
  'bad-timeout.ts': [
    `tasks: { a: task({ run, timeout: 3_600_000 }) }`,
    "bad-timeout.ts: dag 'bad': tasks.a.timeout: expected a duration such as '30s', '2m', '1h30m', '1d12h' or '250ms', got the number 3600000",
  ],
  'reference-not-listed.ts': [
    `tasks: { a: task({ after: [task({ run })], run }) }`,
    "reference-not-listed.ts: dag 'bad': tasks.a.after[0]: a task not listed in this DAG: add it to tasks (references name tasks of the same DAG)",
  ],
  'listed-twice.ts': [
    `tasks: (() => { const x = task({ run }); return { a: x, b: x, c: task({ map: x, run }) }; })()`,
    "listed-twice.ts: dag 'bad': tasks.c.map: the task it names is listed 2 times (a, b): name it by id",
  ],
  'cycle-by-reference.ts': [
    `tasks: (() => { const a = task({ after: ['b'], run }); return { a, b: task({ after: [a], run }) }; })()`,
    "cycle-by-reference.ts: dag 'bad': tasks.a.after: cycle: a -> b -> a",
  ],
};

function dagFolder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-dags-'));
  writeFileSync(path.join(dir, 'good.ts'), good);
  writeFileSync(path.join(dir, 'duplicate.ts'), good);
  writeFileSync(path.join(dir, 'syntax.ts'), `import { defineDag } from 'hubflow';\nexport default defineDag({ id: 'x', tasks: {`);
  for (const [file, [body]] of Object.entries(bad)) {
    writeFileSync(
      path.join(dir, file),
      `import { defineDag, task } from 'hubflow';\nconst run = () => null;\nexport default defineDag({ id: 'bad', ${body} });\n`,
    );
  }
  return dir;
}

describe('a DAG file whose import never settles', () => {
  it('is reported by name once its time limit passes, and the other files still load', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-dags-'));
    writeFileSync(path.join(dir, 'good.ts'), good);
    writeFileSync(
      path.join(dir, 'hangs.ts'),
      `import { defineDag, task } from 'hubflow';\nawait new Promise(() => {});\nexport default defineDag({ id: 'hangs', tasks: { a: task({ run: () => 1 }) } });\n`,
    );
    const registry = await loadDags(dir, { importTimeoutMs: 300 });
    expect([...registry.dags.keys()]).toEqual(['good']);
    expect(registry.errors.map((e) => e.message)).toEqual([
      expect.stringMatching(/hangs\.ts: dag \(unknown id\): \(module\): cannot be loaded: its import did not settle within 0\.3s/),
    ]);
  });
});

describe('resources beside the DAGs', () => {
  it('load from any DAG file, and a bad one or an undeclared use is named by file and field', async () => {
    const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-resources-'));
    writeFileSync(
      path.join(dir, 'resources.ts'),
      `import { defineResource } from 'hubflow';
export const payroll = defineResource({ id: 'payroll-db', blackouts: [{ reason: 'payroll batch', cron: '30 1 * * *', timezone: 'Europe/London', duration: '2h' }] });
export const warehouse = defineResource({ id: 'warehouse', slots: 2 });`,
    );
    writeFileSync(
      path.join(dir, 'bad-resource.ts'),
      `import { defineResource } from 'hubflow';
export const gw = defineResource({ id: 'hmrc-gateway', blackouts: [{ reason: 'x', cron: '0 25 * * *', timezone: 'Europe/London', duration: '1h' }] });`,
    );
    writeFileSync(
      path.join(dir, 'empty-pool.ts'),
      `import { defineResource } from 'hubflow';
export const p = defineResource({ id: 'tiny', slots: 0 });`,
    );
    writeFileSync(
      path.join(dir, 'sync.ts'),
      `import { defineDag, task } from 'hubflow';
export default defineDag({ id: 'sync', tasks: { load: task({ uses: ['payroll-db', 'warehouse'], run: () => 1 }) } });`,
    );
    writeFileSync(
      path.join(dir, 'typo.ts'),
      `import { defineDag, task } from 'hubflow';
export default defineDag({ id: 'typo', tasks: { load: task({ uses: ['payrol-db'], run: () => 1 }) } });`,
    );
    const registry = await loadDags(dir);
    expect([...registry.dags.keys()]).toEqual(['sync']);
    expect([...registry.resources.keys()].sort()).toEqual(['payroll-db', 'warehouse']);
    const messages = registry.errors.map((e) => e.message);
    expect(messages).toContainEqual(expect.stringMatching(/bad-resource\.ts: resource 'hmrc-gateway': blackouts\[0\]\.cron: /));
    expect(messages).toContainEqual(expect.stringMatching(/empty-pool\.ts: resource 'tiny': slots: a pool needs at least 1 slot/));
    expect(messages).toContainEqual(
      expect.stringMatching(/typo\.ts: dag 'typo': tasks\.load\.uses: unknown resource 'payrol-db' \(declared: payroll-db, warehouse\)/),
    );
  });
});

describe('defineDag', () => {
  it('checks start windows, deadlines and schedule jitter', () => {
    const run = () => 1;
    const schedule = { cron: '0 2 * * *', timezone: 'Europe/London' };
    expect(() => defineDag({ id: 'w', window: { start: '00:30', end: '06:00' }, tasks: { a: task({ run }) } })).toThrow("dag 'w': window: needs a schedule");
    expect(() => defineDag({ id: 'w', schedule, window: { start: '0:30', end: '06:00' }, tasks: { a: task({ run }) } })).toThrow(
      "dag 'w': window.start: use 'HH:MM'",
    );
    expect(() => defineDag({ id: 'd', schedule, deadline: '19th 17:00', tasks: { a: task({ run }) } })).toThrow(
      "dag 'd': deadline: '19th 17:00' is not a duration such as '30s', '2m', '1h30m', '1d12h' or '250ms'",
    );
    expect(() => defineDag({ id: 'd', schedule, deadline: 'P1M18DT17H', tasks: { a: task({ run }) } })).toThrow("dag 'd': deadline: 'P1M18DT17H' is not");
    expect(() => defineDag({ id: 't', tasks: { a: task({ timeout: 60_000 as never, run }) } })).toThrow(
      "dag 't': tasks.a.timeout: expected a duration such as '30s', '2m', '1h30m', '1d12h' or '250ms', got the number 60000",
    );
    expect(() => defineDag({ id: 't', tasks: { a: task({ timeout: '0s', run }) } })).toThrow("dag 't': tasks.a.timeout: must be at least 1 ms");
    expect(() => defineDag({ id: 't', tasks: { a: task({ timeout: '1mo', run }) } })).toThrow("dag 't': tasks.a.timeout: '1mo': months and years");
    expect(() => defineDag({ id: 'j', schedule: { ...schedule, jitter: 'soon' }, tasks: { a: task({ run }) } })).toThrow("dag 'j': schedule.jitter:");
    const dag = defineDag({
      id: 'ok',
      schedule: { ...schedule, jitter: '90s' },
      window: { start: '00:30', end: '06:00' },
      deadline: '1mo18d17h',
      tasks: { a: task({ timeout: '1h30m', retry: { base: '2s', max: '5m' }, run }) },
    });
    expect(dag.tasks.get('a')).toMatchObject({ timeoutMs: 5_400_000, retry: { baseMs: 2_000, maxMs: 300_000 } });
    expect(dag.jitterMs).toBe(90_000);
    expect(dag.window).toEqual({ start: 30, end: 360 });
    expect(dag.deadline).toMatchObject({ months: 1, days: 18, hours: 17 });
  });

  it('rejects a retry cap below its base and a mapped task over an unknown list', () => {
    expect(() => defineDag({ id: 'r', retry: { base: '5s', max: '1s' }, tasks: { a: task({ run: () => 1 }) } })).toThrow(
      "dag 'r': tasks.a.retry.max: must be at least base (5s)",
    );
    expect(() => defineDag({ id: 'r', retry: { base: 5_000 as never }, tasks: { a: task({ run: () => 1 }) } })).toThrow(
      "dag 'r': retry.base: expected a duration",
    );
    expect(() => defineDag({ id: 'm', tasks: { a: task({ map: 'tenants', run: () => 1 }) } })).toThrow("dag 'm': tasks.a.map: unknown task 'tenants'");
  });
});

describe('task references', () => {
  it('name upstreams by declaration, typed from their results, and compile to the ids they are listed under', () => {
    const tenants = task({ run: () => ['acme', 'globex'] });
    const extract = task({
      map: tenants,
      run: (ctx) => {
        expectTypeOf(ctx.item).toEqualTypeOf<string>();
        return { tenant: ctx.item, rows: ctx.item.length };
      },
    });
    const total = task({
      after: [extract],
      run: async (ctx) => {
        const rows = await ctx.upstream(extract);
        expectTypeOf(rows).toEqualTypeOf<{ tenant: string; rows: number }[]>();
        return rows.reduce((n, r) => n + r.rows, 0);
      },
    });
    const report = task({
      after: [total, extract],
      trigger: 'all_done',
      run: async (ctx) => {
        // Under all_done the upstream may have failed: its result is then null.
        expectTypeOf(await ctx.upstream(total)).toEqualTypeOf<number | null>();
        expectTypeOf(await ctx.upstream(extract)).toEqualTypeOf<({ tenant: string; rows: number } | null)[]>();
      },
    });
    // @ts-expect-error extract's items are strings, not numbers
    task({ map: tenants, run: (ctx: TaskContext<number>) => ctx.item });
    const dag = defineDag({ id: 'refs', tasks: { tenants, extract, total, report } });
    expect(dag.tasks.get('extract')).toMatchObject({ map: 'tenants', upstream: ['tenants'] });
    expect(dag.tasks.get('report')).toMatchObject({ upstream: ['total', 'extract'], trigger: 'all_done' });
    expect([dag.taskIdOf(total), dag.taskIdOf('total'), dag.taskIdOf(task({ run: () => 1 })), dag.taskIdOf('nope')]).toEqual([
      'total',
      'total',
      undefined,
      undefined,
    ]);
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
    expect(
      messages.some(
        (m) => m.includes("good.ts: dag 'good': id: duplicate DAG id, already defined in") || m.includes("duplicate.ts: dag 'good': id: duplicate DAG id"),
      ),
    ).toBe(true);
    // Where it stops parsing: the end of line 2, as an editor counts columns.
    expect(messages).toContain(`${path.join(dir, 'syntax.ts')}: dag (unknown id): (syntax): line 2, column 45: Expected identifier but found end of file`);
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
