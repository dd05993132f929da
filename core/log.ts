import { pino, type DestinationStream, type Logger, type LoggerOptions } from 'pino';
import { maskRecord, maskSecrets } from './redact.ts';

export type { Logger };

/**
 * Every line passes through core/redact.ts: a password in a database or Redis URL, a token in
 * a query string or an Authorization header is masked whoever logged it (hubflow, a library,
 * a task's error), so no secret reaches a log file or a shipper.
 */
const masking: Pick<LoggerOptions, 'formatters' | 'hooks'> = {
  formatters: { log: (record) => maskRecord(record) as Record<string, unknown> },
  hooks: {
    logMethod(args, method) {
      method.apply(this, args.map((a) => (typeof a === 'string' ? maskSecrets(a) : a)) as Parameters<typeof method>);
    },
  },
};

/**
 * The one logger: JSON lines, one child per component, on stderr, for every command and
 * process alike: stdout carries only what a command prints (a table, one JSON document), so
 * `hubflow ... --json | jq` works whatever is logged. On a terminal the lines are made readable
 * with pino-pretty; anything else (files, log shippers, CI) gets the JSON. `destination` is for
 * tests that read what was logged.
 */
export function createLogger(level = 'info', destination?: DestinationStream): Logger {
  const base = { app: 'hubflow' };
  if (destination) return pino({ level, base, ...masking }, destination);
  if (process.stderr.isTTY && level !== 'silent') {
    return pino({
      level,
      base,
      ...masking,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'app,pid,hostname', translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  // Synchronous, so the last lines before an exit are not lost.
  return pino({ level, base, ...masking }, pino.destination({ dest: 2, sync: true }));
}
