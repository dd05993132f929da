import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INTEGRATION_DAGS, syncHistory } from '../integration-support.ts';
import type { TestRuntime } from '../support.ts';

const bin = path.join(fileURLToPath(new URL('../..', import.meta.url)), 'bin/hubflow.js');

let rt: TestRuntime;
beforeAll(async () => {
  rt = await syncHistory();
});
afterAll(async () => {
  await rt?.close();
});

function hubflow(...args: string[]) {
  return spawnSync(process.execPath, [bin, ...args], {
    env: { ...process.env, ...rt.env, HUBFLOW_DAGS_DIR: INTEGRATION_DAGS },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

describe('hubflow integrations', () => {
  it('prints each SLI beside its SLO as JSON and exits 1 on a breach', () => {
    const { status, stdout } = hubflow('integrations', '--json');
    expect(status).toBe(1);
    const out = JSON.parse(stdout) as { window: string; breached: number; integrations: Record<string, unknown>[] };
    expect(out).toMatchObject({ window: '7d', breached: 1 });
    const [sync] = out.integrations;
    expect(sync).toMatchObject({
      integration: 'workers-to-warehouse',
      dag: 'sync-to-warehouse',
      target: 'warehouse',
      pattern: 'batch',
      owner: 'payroll <ops>',
      met: false,
      sli: { finishedRuns: 2, succeededRuns: 1, successRate: 0.5, deadLetters: 1 },
    });
    const slos = Object.fromEntries((sync!.slos as { slo: string; met: boolean; objective: number }[]).map((c) => [c.slo, [c.met, c.objective]]));
    expect(slos).toEqual({
      success_rate: [false, 0.9],
      // One of the hour's two runs failed: 0.5 / 0.1, a burn of 5, under the fast-burn alert.
      error_budget_burn: [true, 14.4],
      latency_p50: [true, 7200],
      latency_p99: [true, 21600],
      dead_letter_depth: [false, 0],
      dead_letter_dwell: [true, 14400],
    });
    // The scheduled run's latency: its end, an hour and a little after its interval's cut.
    const p50 = (sync!.sli as { latencyP50Seconds: number }).latencyP50Seconds;
    expect(p50).toBeGreaterThan(3600);
    expect(p50).toBeLessThan(3700);
  });

  it('shows a table naming the breached SLOs', () => {
    const { status, stdout } = hubflow('integrations', '--window', '30d');
    expect(status).toBe(1);
    expect(stdout).toMatch(/workers-to-warehouse\s+sync-to-warehouse\s+warehouse\s+batch/);
    expect(stdout).toContain('BREACHED: success_rate, dead_letter_depth');
    expect(stdout).toContain('success rate over 30d: 50.00% (1 of 2 finished runs succeeded); SLO 90.00%');
  });

  it('refuses a window that is not a duration, with usage exit 2', () => {
    const { status, stderr } = hubflow('integrations', '--window', 'a week');
    expect(status).toBe(2);
    expect(stderr).toContain("'a week' is not a duration");
  });
});
