import { type Command, Option } from 'commander';
import { printJson, printRows } from './output.ts';
import { type CdcSource, DEFAULT_PUBLICATION, DEFAULT_SLOT } from '../cdc/source.ts';

/**
 * `hubflow cdc`: change data capture from the hub's WAL (logical replication, pgoutput).
 * The hub is HUBFLOW_HUB_URL, else the metadata database (HUBFLOW_DATABASE_URL, else the
 * embedded one, which runs without wal_level = logical: doctor says so).
 */

interface SourceOptions {
  slot: string;
  publication: string;
}

async function withSource<T>(opts: SourceOptions, fn: (source: CdcSource, config: import('../core/config.ts').Config) => Promise<T>): Promise<T> {
  const { loadConfig } = await import('../core/config.ts');
  const { cdcName } = await import('../cdc/source.ts');
  const { HUB_ENTITIES } = await import('../hub/entities.ts');
  const config = loadConfig();
  const hubUrl = config.HUBFLOW_HUB_URL ?? config.HUBFLOW_DATABASE_URL;
  const rt = hubUrl ? undefined : await (await import('../server/runtime.ts')).openRuntime({ config, defaultLogLevel: 'warn' });
  const source: CdcSource = {
    hubUrl: hubUrl ?? rt!.postgres.url,
    schema: config.HUBFLOW_HUB_SCHEMA,
    entities: HUB_ENTITIES,
    slot: cdcName('--slot', opts.slot),
    publication: cdcName('--publication', opts.publication),
  };
  try {
    return await fn(source, { ...config, HUBFLOW_DATABASE_URL: config.HUBFLOW_DATABASE_URL ?? rt?.postgres.url });
  } finally {
    await rt?.close();
  }
}

export function registerCdcCommands(program: Command): void {
  const cdc = program.command('cdc').description("change data capture from the hub's WAL (opt-in; see the README's CDC section)");
  const slot = () => new Option('--slot <name>', 'the replication slot').default(DEFAULT_SLOT);
  const publication = () => new Option('--publication <name>', 'the publication of the entity tables').default(DEFAULT_PUBLICATION);

  cdc
    .command('doctor')
    .description('check what CDC needs of the hub (wal_level, role, replica identity, publication, slot, WAL cap, lag); exit 1 if a precondition fails')
    .addOption(slot())
    .addOption(publication())
    .option('--json', 'print JSON')
    .action((opts: SourceOptions & { json?: boolean }) =>
      withSource(opts, async (source) => {
        const report = await (await import('../cdc/doctor.ts')).runDoctor(source);
        if (opts.json) printJson(report);
        else {
          printRows(
            report.checks.map((c) => ({ check: c.check, status: c.status, detail: c.detail })),
            false,
          );
          const fixes = report.checks.filter((c) => c.status !== 'ok' && c.fix);
          if (fixes.length) process.stdout.write(`\nto change:\n${fixes.map((c) => `  ${c.check}: ${c.fix}`).join('\n')}\n`);
        }
        if (!report.ok) process.exitCode = 1;
      }),
    );

  cdc
    .command('setup')
    .description("create the publication and the replication slot, and apply the initial cut taken from the slot's exported snapshot")
    .addOption(slot())
    .addOption(publication())
    .option('--reseed', 'drop an existing slot and take a new initial cut (after the slot was invalidated)')
    .option('--json', 'print JSON')
    .action((opts: SourceOptions & { reseed?: boolean; json?: boolean }) =>
      withSource(opts, (source, config) =>
        withSink(config, async (sink, log) => {
          const result = await (await import('../cdc/setup.ts')).setupCdc(source, sink, { reseed: opts.reseed, log });
          if (opts.json) return printJson(result);
          process.stdout.write(
            `publication ${source.publication}: ${result.publication}; slot ${result.slot} from ${result.consistentPoint}; ` +
              `initial cut of ${result.rows} rows as of ${result.snapshotAt} applied in ${result.seconds.toFixed(1)} s` +
              `${result.tombstones ? `; ${result.tombstones} keys deleted while no slot streamed closed as deleted` : ''}\n`,
          );
        }),
      ),
    );

  cdc
    .command('run')
    .description("stream the hub's changes into the warehouse until SIGINT/SIGTERM; resumes where the warehouse left off")
    .addOption(slot())
    .addOption(publication())
    .action((opts: SourceOptions) =>
      withSource(opts, (source, config) =>
        withSink(
          config,
          async (sink, log) => {
            const { streamChanges } = await import('../cdc/stream.ts');
            const { measuringSink } = await import('../server/engine/sync-latency-cdc.ts');
            const { SlotMonitor } = await import('../cdc/monitor.ts');
            const escalate = (await import('../server/engine/escalation.ts')).createEscalator(log, config.HUBFLOW_ALERT_WEBHOOK);
            // The first look comes before streaming: an invalidated slot is alerted, then the stream refuses it.
            const monitor = new SlotMonitor({
              hubUrl: source.hubUrl,
              slot: source.slot,
              lagAlertBytes: config.HUBFLOW_CDC_LAG_ALERT_MB * 1024 ** 2,
              log,
              alert: (a) => escalate({ kind: 'cdc_slot', dagId: `cdc:${a.slot}`, message: a.message, details: { slot: a.slot, ...a.details } }),
            });
            const stopMonitor = await monitor.start();
            const stop = new AbortController();
            process.once('SIGINT', () => stop.abort());
            process.once('SIGTERM', () => stop.abort());
            // Each applied batch's latency goes to the metadata store, under the integration the registry lists.
            const store = await openMigratedStore(config);
            try {
              const measured = measuringSink(sink, store, config.HUBFLOW_CDC_INTEGRATION);
              const stats = await streamChanges({ source, sink: measured, log, signal: stop.signal });
              log.info(stats, 'cdc stream stopped');
            } finally {
              await stopMonitor();
              await store.destroy();
            }
          },
          'info',
        ),
      ),
    );
}

/** The metadata store (migrated, as every process that writes to it does). */
async function openMigratedStore(config: import('../core/config.ts').Config): Promise<import('../server/store/db.ts').Store> {
  const { openStore, migrateStore } = await import('../server/store/db.ts');
  if (!config.HUBFLOW_DATABASE_URL) throw new Error('no metadata database to record sync latency in');
  const store = openStore(config.HUBFLOW_DATABASE_URL, config.HUBFLOW_DB_SCHEMA, 2);
  try {
    await migrateStore(store, config.HUBFLOW_DB_SCHEMA);
  } catch (err) {
    await store.destroy();
    throw err;
  }
  return store;
}

/** The change log and the SCD2 history of the configured warehouse, closed afterwards. */
async function withSink<T>(
  config: import('../core/config.ts').Config,
  fn: (sink: import('../cdc/sink.ts').CdcSink, log: import('../core/log.ts').Logger) => Promise<T>,
  defaultLevel = 'warn',
): Promise<T> {
  const { openWarehouse } = await import('../warehouse/open.ts');
  const { ChangeLogSink } = await import('../cdc/change-log.ts');
  const { HistoryApplier } = await import('../cdc/history.ts');
  const { HUB_ENTITIES } = await import('../hub/entities.ts');
  const log = (await import('../core/log.ts')).createLogger(config.HUBFLOW_LOG_LEVEL ?? defaultLevel);
  if (!config.HUBFLOW_DATABASE_URL) throw new Error('no metadata database to hold the warehouse');
  const wh = await openWarehouse({ ...config, HUBFLOW_DATABASE_URL: config.HUBFLOW_DATABASE_URL });
  try {
    // The history tables are the nightly history's own: its schema step makes them.
    await (await import('../tasks/history/apply.ts')).ensureSchema(wh, HUB_ENTITIES);
    return await fn(new ChangeLogSink(wh, { history: new HistoryApplier(wh, HUB_ENTITIES) }), log);
  } finally {
    await wh.close();
  }
}
