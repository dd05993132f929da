import type { Command } from 'commander';
import { dateOption } from './args.ts';
import { printJson, printRows } from './output.ts';
import type { HubDb } from '../hub/db.ts';
import { GLOBAL_SCOPE } from '../hub/tenant-id.ts';

/**
 * Opens the hub for one command: HUBFLOW_HUB_URL, else the metadata store's PostgreSQL (the
 * embedded one when nothing is configured), so the demo hub works with no setup at all.
 */
async function withHub<T>(fn: (db: HubDb, schema: string) => Promise<T>): Promise<T> {
  const config = (await import('../core/config.ts')).loadConfig();
  const rt = config.HUBFLOW_HUB_URL ? undefined : await (await import('../server/runtime.ts')).openRuntime({ config, defaultLogLevel: 'warn' });
  const db = (await import('../hub/db.ts')).openHub(config.HUBFLOW_HUB_URL ?? rt!.postgres.url);
  try {
    return await fn(db, config.HUBFLOW_HUB_SCHEMA);
  } finally {
    await db.destroy();
    await rt?.close();
  }
}

function whole(flag: string, min: number) {
  return (value: string): number => {
    const n = Number(value);
    if (!Number.isSafeInteger(n) || n < min) throw new Error(`${flag}: a whole number of at least ${min}, not '${value}'`);
    return n;
  };
}

function share(value: string): number {
  const n = Number(value);
  if (!(n >= 0 && n <= 1)) throw new Error(`--rate: a share from 0 to 1 (0.01 = 1%), not '${value}'`);
  return n;
}

const say = (text: string) => process.stdout.write(`${text}\n`);

export function registerHubCommands(program: Command): void {
  const hub = program.command('hub').description('the demo MDM hub: seed it, change it day by day, count it');

  hub
    .command('seed')
    .description('fill the demo hub with deterministic data (same options, same bytes)')
    .requiredOption('--tenants <n>', 'tenants (one client each, 1-3 orgs in different countries)', whole('--tenants', 1))
    .requiredOption('--workers <n>', 'workers in total across tenants', whole('--workers', 0))
    .option('--seed <n>', 'random seed', whole('--seed', 0), 1)
    .option('--reset', 'drop the demo tables first (refused for tables the demo did not create)')
    .option('--json', 'print JSON')
    .action((opts: { tenants: number; workers: number; seed: number; reset?: boolean; json?: boolean }) =>
      withHub(async (db, schema) => {
        const result = await (await import('../demo/seed.ts')).seedHub(db, schema, {
          tenants: opts.tenants,
          workers: opts.workers,
          seed: opts.seed,
          reset: opts.reset,
        });
        if (opts.json) return printJson({ schema, ...result });
        const total = Object.values(result.rows).reduce((a, b) => a + b, 0);
        printRows(
          Object.entries(result.rows).map(([entity, rows]) => ({ entity, rows })),
          false,
        );
        say(
          `seeded ${schema}: ${total.toLocaleString('en')} rows in ${result.seconds.toFixed(1)} s (${Math.round(total / result.seconds).toLocaleString('en')} rows/s)`,
        );
      }),
    );

  hub
    .command('mutate')
    .description("apply one day's changes: updates, hires, terminations, deletes")
    .option('--seed <n>', 'random seed; also picks the day (epoch + seed days) unless --at is given', whole('--seed', 0), 1)
    .option('--rate <share>', 'share of workers changed (0.01 = 1%)', share, 0.01)
    .option('--at <date>', 'the day changed (ISO date)', dateOption)
    .option('--json', 'print JSON')
    .action((opts: { seed: number; rate: number; at?: Date; json?: boolean }) =>
      withHub(async (db, schema) => {
        const result = await (await import('../demo/mutate.ts')).mutateHub(db, schema, { seed: opts.seed, rate: opts.rate, at: opts.at });
        if (opts.json) return printJson({ schema, ...result });
        const fields = Object.entries(result.byField)
          .map(([k, n]) => `${k} ${n}`)
          .join(', ');
        say(
          `${schema} on ${result.day}: ${result.updated} updated (${fields}), ${result.hired} hired, ${result.terminated} terminated, ${result.deleted} deleted, of ${result.workersBefore} workers, in ${result.seconds.toFixed(1)} s`,
        );
      }),
    );

  hub
    .command('stats')
    .description('rows per entity and tenant')
    .option('--json', 'print JSON')
    .action((opts: { json?: boolean }) =>
      withHub(async (db, schema) => {
        const started = performance.now();
        const counts = await (await import('../demo/stats.ts')).hubStats(db, schema);
        if (opts.json) return printJson(counts);
        printRows(
          counts.map((c) => ({ entity: c.entity, tenant: c.tenant ?? GLOBAL_SCOPE, rows: c.rows })),
          false,
        );
        say(`${schema}: ${counts.reduce((a, c) => a + c.rows, 0).toLocaleString('en')} rows in ${((performance.now() - started) / 1000).toFixed(1)} s`);
      }),
    );
}
