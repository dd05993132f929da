import { pino, type Logger } from 'pino';

export type { Logger };

/** The one logger: JSON lines on stdout, one child per component. */
export function createLogger(level = 'info'): Logger {
  return pino({ level, base: { app: 'hubflow' } });
}
