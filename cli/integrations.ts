import { InvalidArgumentError, type Command } from 'commander';
import { printJson, printRows, withRuntime } from './output.ts';
import { formatDuration, formatSeconds } from '../server/engine/duration.ts';
import { parseWindow } from '../server/engine/integration-spec.ts';
import type { IntegrationStatus } from '../server/engine/integrations.ts';

const DEFAULT_WINDOW = '7d';

function windowMs(value: string): number {
  const ms = parseWindow(value);
  if (typeof ms === 'string') throw new InvalidArgumentError(ms);
  return ms;
}

const pct = (r: number | null) => (r === null ? '' : `${(r * 100).toFixed(2)}%`);
const secs = (s: number | null) => (s === null ? '' : formatSeconds(s));

/** One table row: each SLI, and the SLOs it breaches. */
function row(s: IntegrationStatus): Record<string, unknown> {
  return {
    integration: s.integration,
    dag: s.dag,
    target: s.target,
    pattern: s.pattern,
    owner: s.owner,
    runs: s.sli.finishedRuns,
    success: pct(s.sli.successRate),
    latency_p50: secs(s.sli.latencyP50Seconds),
    latency_p99: secs(s.sli.latencyP99Seconds),
    latency_from: s.sli.latencySource === 'measured' ? `measured (${s.sli.latencyMeasured}, ${s.sli.latencyFrom.join(', ')})` : (s.sli.latencySource ?? ''),
    dead_letters: s.sli.deadLetters,
    oldest_dead_letter: secs(s.sli.deadLetterDwellSeconds),
    slo: s.met
      ? 'met'
      : `BREACHED: ${s.slos
          .filter((c) => !c.met)
          .map((c) => c.slo)
          .join(', ')}`,
  };
}

export function registerIntegrationsCommand(program: Command): void {
  program
    .command('integrations')
    .description("each DAG's integration: its SLIs over the window, its SLOs, and whether it meets them; exit 1 if any SLO is breached")
    .option('--window <duration>', "how far back runs count, e.g. '7d', '24h' (dead letters count while open)", windowMs, windowMs(DEFAULT_WINDOW))
    .option('--json', 'print JSON')
    .action((opts: { window: number; json?: boolean }) =>
      withRuntime(async (rt) => {
        const ms = opts.window;
        const { measureIntegrations } = await import('../server/engine/integrations.ts');
        const statuses = await measureIntegrations(rt.db, rt.dags.dags.values(), ms);
        const breached = statuses.filter((s) => !s.met).length;
        if (opts.json) printJson({ window: formatDuration(ms), integrations: statuses, breached });
        else {
          printRows(statuses.map(row), false);
          for (const s of statuses) for (const c of s.slos.filter((c) => !c.met)) process.stdout.write(`\n${s.integration} (${s.dag}): ${c.summary}`);
          if (breached) process.stdout.write('\n');
        }
        if (breached) process.exitCode = 1;
      }),
    );
}
