import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A DAG folder: payroll-db held 01:30-03:30 London; a sync due at `cron` that must start 00:30-03:00. */
function folder(cron: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-windows-'));
  writeFileSync(
    path.join(dir, 'resources.ts'),
    `import { defineResource } from 'hubflow';
export const payroll = defineResource({ id: 'payroll-db', blackouts: [{ reason: 'payroll batch', cron: '30 1 * * *', timezone: 'Europe/London', duration: '2h' }] });`,
  );
  writeFileSync(
    path.join(dir, 'sync.ts'),
    `import { defineDag, task } from 'hubflow';
export default defineDag({
  id: 'warehouse-sync',
  schedule: { cron: '${cron}', timezone: 'Europe/London' },
  window: { start: '00:30', end: '${cron.startsWith('0 4') ? '06:00' : '03:00'}' },
  tasks: { extract: task({ uses: ['payroll-db'], run: () => 1 }), load: task({ after: ['extract'], run: () => 1 }) },
});`,
  );
  return dir;
}

function windows(dir: string, ...args: string[]) {
  // No database or Redis needed: the check reads the DAG folder only.
  const env = { ...process.env, HUBFLOW_DAGS_DIR: dir, HUBFLOW_DATABASE_URL: 'postgres://nobody@127.0.0.1:1/none', HUBFLOW_REDIS_URL: 'redis://127.0.0.1:1' };
  const result = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), 'windows', ...args], { env, encoding: 'utf8', timeout: 60_000 });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

describe('hubflow windows check', () => {
  it('finds the planted payroll collision and exits 1', () => {
    const { status, stdout } = windows(folder('0 2 * * *'), 'check', '--days', '2');
    expect(status).toBe(1);
    expect(stdout).toMatch(/COLLISION {2}warehouse-sync\/extract needs payroll-db: payroll batch, \d{4}-\d\d-\d\d 01:30 to 03:30 Europe\/London/);
    expect(stdout).toContain('can start 03:30: MISSES its start window (closes 03:00)');
  });

  it('exits 0 once the schedule moves clear of the batch', () => {
    const { status, stdout } = windows(folder('0 4 * * *'), 'check', '--days', '7');
    expect(status).toBe(0);
    expect(stdout).toContain('no collisions in the next 7 days (1 DAGs, 1 resources)');
  });

  it('gives the collisions as JSON', () => {
    const { status, stdout } = windows(folder('0 2 * * *'), 'check', '--days', '1', '--json');
    expect(status).toBe(1);
    const out = JSON.parse(stdout) as { collisions: { dag: string; task: string; resource: string; missesWindow: boolean }[] };
    expect(out.collisions).toEqual([expect.objectContaining({ dag: 'warehouse-sync', task: 'extract', resource: 'payroll-db', missesWindow: true })]);
  });
});

describe('hubflow windows show', () => {
  it("prints each resource's blackouts and the task starts that meet them", () => {
    const { status, stdout } = windows(folder('0 2 * * *'), 'show', '--days', '2');
    expect(status).toBe(0);
    expect(stdout).toMatch(/payroll-db {2}\(no slot limit/);
    expect(stdout).toMatch(/held {3}\d{4}-\d\d-\d\d 01:30 to 03:30 Europe\/London {2}payroll batch/);
    expect(stdout).toMatch(/start {2}\d{4}-\d\d-\d\d 02:00 Europe\/London {2}warehouse-sync\/extract, deferred to 03:30/);
  });
});
