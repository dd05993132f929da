import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one logger: JSON lines, one child per component, on stderr, for every command and
 * process alike: stdout carries only what a command prints (a table, one JSON document), so
 * `hubflow ... --json | jq` works whatever is logged. On a terminal the lines are made readable
 * with pino-pretty; anything else (files, log shippers, CI) gets the JSON.
 */
export function createLogger(level = 'info'): Logger {
  const base = { app: 'hubflow' };
  if (process.stderr.isTTY && level !== 'silent') {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { destination: 2, colorize: true, ignore: 'app,pid,hostname', translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  // Synchronous, so the last lines before an exit are not lost.
  return pino({ level, base }, pino.destination({ dest: 2, sync: true }));
}
