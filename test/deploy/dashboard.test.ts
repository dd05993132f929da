import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StoreMetrics } from '../../server/http/metrics.ts';
import { testRuntime, type TestRuntime } from '../support.ts';

/**
 * The Grafana dashboard queries only series hubflow's /metrics exports, read from a real scrape
 * of a real store, so a renamed metric breaks this test instead of leaving an empty panel.
 */

interface Panel {
  type: string;
  title: string;
  targets?: { expr: string }[];
}
const dashboard = JSON.parse(readFileSync(new URL('../../deploy/grafana/dashboards/hubflow.json', import.meta.url), 'utf8')) as {
  panels: Panel[];
  templating: { list: { query: { query: string } }[] };
};

let rt: TestRuntime;
let exported: Set<string>;

beforeAll(async () => {
  rt = await testRuntime([]);
  const text = await new StoreMetrics(rt).scrape();
  exported = new Set<string>();
  for (const [, name, type] of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) {
    const suffixes = type === 'histogram' ? ['_bucket', '_sum', '_count'] : type === 'summary' ? ['', '_sum', '_count'] : [''];
    for (const suffix of suffixes) exported.add(`${name}${suffix}`);
  }
});

afterAll(async () => {
  await rt?.close();
});

const queries = () => [...dashboard.panels.flatMap((p) => (p.targets ?? []).map((t) => t.expr)), ...dashboard.templating.list.map((v) => v.query.query)];

describe('the Grafana dashboard', () => {
  it('names only series that /metrics exports', () => {
    expect(exported.size).toBeGreaterThan(10);
    const named = new Set(queries().flatMap((q) => q.match(/\bhubflow_[a-z0-9_]+/g) ?? []));
    expect([...named].filter((name) => !exported.has(name))).toEqual([]);
  });

  it('queries a hubflow series in every panel that draws, and covers what an operator watches', () => {
    const drawing = dashboard.panels.filter((p) => p.type !== 'row' && p.type !== 'text');
    for (const p of drawing)
      expect(
        p.targets?.every((t) => /\bhubflow_/.test(t.expr)),
        p.title,
      ).toBe(true);
    const named = queries().join('\n');
    for (const series of [
      'hubflow_runs_total',
      'hubflow_task_duration_seconds_bucket',
      'hubflow_handoff_delay_seconds_bucket',
      'hubflow_schedule_delay_seconds_bucket',
      'hubflow_queue_jobs',
      'hubflow_dead_letters',
      'hubflow_reconciliation_match_ratio',
    ]) {
      expect(named).toContain(series);
    }
  });
});
