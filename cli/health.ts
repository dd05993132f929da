import type { Command } from 'commander';
import { printJson } from './output.ts';

const TIMEOUT_MS = 3_000;

interface Check {
  service: 'postgres' | 'redis';
  ok: boolean;
  url?: string;
  error?: string;
}

/**
 * `hubflow health`: whether this machine (or container) reaches the PostgreSQL and Redis hubflow
 * is configured with, starting nothing. The compose file's healthcheck of the scheduler and the
 * workers; the server has /healthz. Exit 1 when either does not answer.
 */
export function registerHealthCommand(program: Command): void {
  program
    .command('health')
    .description('check that the configured PostgreSQL and Redis answer (exit 1 if not); starts nothing')
    .option('--json', 'print JSON')
    .action(async (opts: { json?: boolean }) => {
      const checks = await runChecks();
      if (opts.json) printJson({ ok: checks.every((c) => c.ok), checks });
      else for (const c of checks) process.stdout.write(`${c.service}: ${c.ok ? 'ok' : `failed: ${c.error}`}${c.url ? ` (${c.url})` : ''}\n`);
      if (!checks.every((c) => c.ok)) process.exitCode = 1;
    });
}

async function runChecks(): Promise<Check[]> {
  const config = (await import('../core/config.ts')).loadConfig();
  const { maskUrl, reasonOf } = await import('../server/connections/instance.ts');
  const { checkConnection, runningPostgresUrl } = await import('../server/connections/postgres.ts');
  const { pingRedis, runningRedisUrl } = await import('../server/connections/redis.ts');
  const probe = async (service: Check['service'], url: string | undefined, check: (url: string) => Promise<void>): Promise<Check> => {
    if (!url) return { service, ok: false, error: 'not configured (HUBFLOW_DATABASE_URL) and no embedded server is running' };
    try {
      await check(url);
      return { service, ok: true, url: maskUrl(url) };
    } catch (err) {
      return { service, ok: false, url: maskUrl(url), error: reasonOf(err) };
    }
  };
  return Promise.all([
    probe('postgres', (await runningPostgresUrl(config))?.url, (url) => checkConnection(url, TIMEOUT_MS)),
    probe('redis', await runningRedisUrl(config), (url) => pingRedis(url, TIMEOUT_MS)),
  ]);
}
