import { type Command, Option } from 'commander';
import { printJson } from './output.ts';
import type { Config } from '../core/config.ts';

type Target = 'store' | 'hub' | 'warehouse';

interface DbUrlOptions {
  store?: boolean;
  hub?: boolean;
  warehouse?: boolean;
  showPassword?: boolean;
  json?: boolean;
}

/**
 * `hubflow db url`: a connection string an analyst can give psql or a SQL client while hubflow
 * runs. The password is masked unless asked for: the URL is printed on a screen and may be pasted
 * into a ticket, and `--show-password` makes leaving it in shell history a deliberate act.
 */
export function registerDbCommands(program: Command): void {
  program
    .command('db')
    .description('the PostgreSQL databases hubflow uses')
    .command('url')
    .description('a connection string for the metadata store (default), the hub or the warehouse, opening in its schema')
    .addOption(new Option('--store', "hubflow's metadata store (the default)").conflicts(['hub', 'warehouse']))
    .addOption(new Option('--hub', 'the MDM hub hubflow reads').conflicts(['warehouse']))
    .addOption(new Option('--warehouse', 'the PostgreSQL warehouse holding the history tables'))
    .option('--show-password', 'print the password instead of ***')
    .option('--json', 'print JSON')
    .action(async (opts: DbUrlOptions) => {
      const config = (await import('../core/config.ts')).loadConfig();
      const target: Target = opts.hub ? 'hub' : opts.warehouse ? 'warehouse' : 'store';
      const { url, schema, source } = await databaseOf(config, target);
      const shown = withSearchPath(opts.showPassword ? url : (await import('../server/connections/instance.ts')).maskUrl(url), schema);
      const masked = !opts.showPassword && new URL(url).password !== '';
      if (opts.json) return printJson({ target, url: shown, schema, source, passwordMasked: masked });
      process.stdout.write(`${shown}\n`);
      if (masked) process.stderr.write('the password is shown as ***; add --show-password to print it\n');
    });
}

async function databaseOf(config: Config, target: Target): Promise<{ url: string; schema: string; source: 'env' | 'embedded' }> {
  if (target === 'warehouse' && config.HUBFLOW_WAREHOUSE === 'snowflake') {
    throw new Error(
      `db url: the warehouse is Snowflake (account ${config.SNOWFLAKE_ACCOUNT}, database ${config.SNOWFLAKE_DATABASE}, ` +
        `schema ${config.SNOWFLAKE_SCHEMA}), which has no PostgreSQL URL; open it with Snowflake's own clients`,
    );
  }
  const own = target === 'hub' ? config.HUBFLOW_HUB_URL : target === 'warehouse' ? config.HUBFLOW_WAREHOUSE_URL : undefined;
  const schema = target === 'hub' ? config.HUBFLOW_HUB_SCHEMA : target === 'warehouse' ? config.HUBFLOW_WAREHOUSE_SCHEMA : config.HUBFLOW_DB_SCHEMA;
  if (own) return { url: own, schema, source: 'env' };
  const store = await (await import('../server/connections/postgres.ts')).runningPostgresUrl(config);
  if (!store) {
    throw new Error(
      `db url: the embedded PostgreSQL under ${config.HUBFLOW_HOME} is not running; start hubflow (hubflow dev, scheduler, worker or server) ` +
        'and ask again (it keeps its port across restarts), or set HUBFLOW_DATABASE_URL',
    );
  }
  return { ...store, schema };
}

/** libpq's `options` parameter, so psql and the drivers built on libpq open in the schema that matters. */
function withSearchPath(url: string, schema: string): string {
  const parsed = new URL(url);
  if (parsed.searchParams.has('options')) return url;
  // Written out, not through URLSearchParams: libpq decodes %XX but reads '+' as itself, not a space.
  return `${url}${parsed.search ? '&' : '?'}options=-csearch_path%3D${schema}`;
}
