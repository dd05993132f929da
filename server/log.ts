import { pino, type Logger } from 'pino';

export type { Logger };

/**
 * The one logger: JSON lines, one child per component. On a terminal the lines are made
 * readable with pino-pretty; anything else (files, log shippers, CI) gets the JSON.
 */
export function createLogger(level = 'info'): Logger {
  const base = { app: 'hubflow' };
  if (process.stdout.isTTY && level !== 'silent') {
    return pino({
      level,
      base,
      transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'app,pid,hostname', translateTime: 'SYS:HH:MM:ss.l' } },
    });
  }
  return pino({ level, base });
}
