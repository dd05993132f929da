import { z } from 'zod';

/**
 * Every setting hubflow reads, validated once at start-up. Nothing else reads process.env.
 */
const schema = z
  .object({
    HUBFLOW_DATABASE_URL: z.string().url().optional(),
    /** PostgreSQL schema holding hubflow's metadata tables. */
    HUBFLOW_DB_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier')
      .default('hubflow'),
    HUBFLOW_REDIS_URL: z.string().url().optional(),
    /** The MDM hub (source of truth) hubflow reads; default: the metadata database. */
    HUBFLOW_HUB_URL: z.string().url().optional(),
    /** Schema of the hub's tables (the demo hub's, or a real hub's). */
    HUBFLOW_HUB_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier')
      .default('hub'),
    /** Prefix of every BullMQ key, so several hubflow installations can share one Redis. */
    HUBFLOW_QUEUE_PREFIX: z.string().min(1).default('hubflow'),
    HUBFLOW_DAGS_DIR: z.string().min(1).optional(),
    /** Where embedded PostgreSQL and Redis keep their data when no URL is given. */
    HUBFLOW_HOME: z.string().min(1).default('.hubflow'),
    HUBFLOW_WORKER_CONCURRENCY: z.coerce.number().int().min(1).max(1000).default(20),
    /** How long a worker's lock on a running task lasts; a killed worker's task is retried after it expires. */
    HUBFLOW_LOCK_MS: z.coerce.number().int().min(500).default(30_000),
    /** How often the scheduler looks for due runs and for ready tasks that have no queued job. */
    HUBFLOW_SCHEDULER_TICK_MS: z.coerce.number().int().min(50).default(1_000),
    HUBFLOW_SWEEP_INTERVAL_MS: z.coerce.number().int().min(100).default(10_000),
    HUBFLOW_ALERT_WEBHOOK: z.string().url().optional(),
    /** The operator's token: every route, reads and actions. */
    HUBFLOW_API_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
    /** A read-only token (on-call dashboards): pages, API reads, metrics; every action is refused. */
    HUBFLOW_API_READ_TOKEN: z.string().min(16, 'use at least 16 characters').optional(),
    /**
     * Which proxies' X-Forwarded-* headers to believe (Fastify's trustProxy): 'true' (any),
     * a hop count, or a comma-separated list of addresses and CIDRs. Behind a TLS-terminating
     * proxy it makes the auth cookie Secure and the same-origin checks compare against https.
     */
    HUBFLOW_TRUST_PROXY: z
      .string()
      .trim()
      .default('false')
      .transform((v): boolean | number | string => (v === 'true' ? true : v === 'false' || v === '' ? false : /^\d+$/.test(v) ? Number(v) : v)),
    /** bull-board is read-only unless this is 'true'; hubflow's API clears, retries and cancels either way. */
    HUBFLOW_BOARD_WRITABLE: z
      .enum(['true', 'false'])
      .default('false')
      .transform((v) => v === 'true'),
    HUBFLOW_HOST: z.string().default('127.0.0.1'),
    HUBFLOW_PORT: z.coerce.number().int().min(0).max(65535).default(8080),
    /** Default: info for the long-running processes, warn for one-shot commands. */
    HUBFLOW_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
    /** How long each try's task log is kept ('30d', '12h', '2w'); the scheduler prunes older lines. */
    HUBFLOW_LOG_RETENTION: z.string().min(1).default('30d'),
    /** Where history is loaded: PostgreSQL (default) or Snowflake (needs the SNOWFLAKE_* settings). */
    HUBFLOW_WAREHOUSE: z.enum(['postgres', 'snowflake']).default('postgres'),
    /** PostgreSQL warehouse; default: the metadata database. */
    HUBFLOW_WAREHOUSE_URL: z.string().url().optional(),
    HUBFLOW_WAREHOUSE_SCHEMA: z
      .string()
      .regex(/^[a-z_][a-z0-9_]*$/, 'lower-case SQL identifier')
      .default('warehouse'),
    /** Extracted snapshots and filing work files; shared storage when workers run on several machines. */
    HUBFLOW_STAGING_DIR: z.string().min(1).optional(),
    /**
     * How the PostgreSQL warehouse's staged snapshots are compressed. None by default: the file is
     * read once, locally, and compressing costs the extract a core-second per million rows that
     * the hub's COPY needs. gzip or brotli for a small or shared staging disk. Snowflake's staged
     * files are always gzip.
     */
    HUBFLOW_STAGING_COMPRESSION: z.enum(['none', 'gzip', 'brotli']).default('none'),
    /** Finished filing files, per jurisdiction, period and tenant. */
    HUBFLOW_OUTBOX_DIR: z.string().min(1).optional(),
    /** JSON file of filing submitters per jurisdiction code (or "*"): name, authorityId, taxId, address, contact. */
    HUBFLOW_FILING_SUBMITTERS: z.string().min(1).optional(),
    /** Share of a tenant's live rows one load may delete before it stops for an operator's approval. */
    HUBFLOW_MASS_DELETE_SHARE: z.coerce.number().min(0).max(1).default(0.02),
    /** `hubflow cdc run` escalates once when its replication slot lags the hub by more than this many MB of WAL. */
    HUBFLOW_CDC_LAG_ALERT_MB: z.coerce.number().positive().default(1024),
    /** The integration `hubflow cdc run` records its sync latency under (the one dags/hub-cdc.ts declares). */
    HUBFLOW_CDC_INTEGRATION: z.string().min(1).default('hub-history-cdc'),
    SNOWFLAKE_ACCOUNT: z.string().min(1).optional(),
    SNOWFLAKE_USER: z.string().min(1).optional(),
    SNOWFLAKE_PASSWORD: z.string().min(1).optional(),
    SNOWFLAKE_PRIVATE_KEY_PATH: z.string().min(1).optional(),
    SNOWFLAKE_WAREHOUSE: z.string().min(1).optional(),
    SNOWFLAKE_DATABASE: z.string().min(1).optional(),
    SNOWFLAKE_SCHEMA: z.string().min(1).optional(),
    SNOWFLAKE_ROLE: z.string().min(1).optional(),
    /** Milliseconds a Snowflake login may take before it fails naming the account (default 30000). */
    SNOWFLAKE_CONNECT_TIMEOUT_MS: z
      .string()
      .regex(/^[1-9]\d*$/, 'a whole number of milliseconds')
      .optional(),
  })
  .superRefine((c, ctx) => {
    if (c.HUBFLOW_API_READ_TOKEN && !c.HUBFLOW_API_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['HUBFLOW_API_READ_TOKEN'], message: 'needs HUBFLOW_API_TOKEN too: without it every request could act' });
    }
    if (c.HUBFLOW_API_READ_TOKEN && c.HUBFLOW_API_READ_TOKEN === c.HUBFLOW_API_TOKEN) {
      ctx.addIssue({ code: 'custom', path: ['HUBFLOW_API_READ_TOKEN'], message: 'must differ from HUBFLOW_API_TOKEN' });
    }
    if (c.HUBFLOW_WAREHOUSE === 'snowflake') {
      for (const key of ['SNOWFLAKE_ACCOUNT', 'SNOWFLAKE_USER', 'SNOWFLAKE_DATABASE', 'SNOWFLAKE_SCHEMA', 'SNOWFLAKE_WAREHOUSE'] as const) {
        if (!c[key]) ctx.addIssue({ code: 'custom', path: [key], message: 'required when HUBFLOW_WAREHOUSE=snowflake' });
      }
      if (!c.SNOWFLAKE_PASSWORD && !c.SNOWFLAKE_PRIVATE_KEY_PATH) {
        ctx.addIssue({
          code: 'custom',
          path: ['SNOWFLAKE_PASSWORD'],
          message: 'set SNOWFLAKE_PASSWORD or SNOWFLAKE_PRIVATE_KEY_PATH when HUBFLOW_WAREHOUSE=snowflake',
        });
      }
    }
  });

export type Config = z.infer<typeof schema>;

export class ConfigError extends Error {
  override name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return parsed.data;
}
