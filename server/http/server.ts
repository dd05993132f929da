import { fastify, LogController, type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import type { Runtime } from '../runtime.ts';
import { registerApi } from './api.ts';
import { registerActionRoutes } from './actions.ts';
import { MASK, maskUrl } from '../../core/redact.ts';
import { checkServable, installAuth } from './auth.ts';
import { registerBoard } from './board.ts';
import { installErrorHandler, installJsonParser } from './errors.ts';
import { installGuard } from './guard.ts';
import { registerHealth } from './health.ts';
import { registerIntegrations } from './integrations.ts';
import { registerMetrics } from './metrics.ts';
import { registerDagPage } from './dag-page.ts';
import { registerDeadLettersPage } from './dead-letters.ts';
import { registerGantt } from './gantt.ts';
import { registerLogs } from './logs.ts';
import { registerPages } from './pages.ts';
import { registerOutboxPage } from './outbox-page.ts';
import { registerLive } from './refresh.ts';
import { registerRejects } from './rejects.ts';
import { registerSlaPage } from './sla-page.ts';

function safeDecode(url: string): string {
  try {
    return decodeURIComponent(url);
  } catch {
    return url;
  }
}

/** HUBFLOW_TRUST_PROXY as Fastify takes it: a hop count becomes the function trusting that many hops. */
function trustProxy(setting: boolean | number | string): boolean | string | ((address: string, hop: number) => boolean) {
  return typeof setting === 'number' ? (_address, hop) => hop < setting : setting;
}

/** The REST API, run pages, bull-board, /metrics and /healthz on one Fastify instance, not listening. */
export async function createServer(rt: Runtime): Promise<FastifyInstance> {
  const log = rt.log.child({ component: 'http' });
  const tokens = [rt.config.HUBFLOW_API_TOKEN, rt.config.HUBFLOW_API_READ_TOKEN].filter((t): t is string => Boolean(t));
  // A token anywhere in the URL (a path, another key, any percent-encoding of it) is masked too.
  const loggedUrl = (url: string) => {
    const masked = maskUrl(url);
    const plain = safeDecode(masked);
    return tokens.some((t) => plain.includes(t)) ? tokens.reduce((u, t) => u.replaceAll(t, MASK), plain) : masked;
  };
  // As Fastify's base logger type, so that the instance is a plain FastifyInstance.
  const baseLog: FastifyBaseLogger = log;
  const app = fastify({
    loggerInstance: baseLog,
    // Fastify's request lines would log the raw URL, token and all; the hook below logs a masked one.
    logController: new LogController({ disableRequestLogging: true }),
    trustProxy: trustProxy(rt.config.HUBFLOW_TRUST_PROXY),
  });
  installErrorHandler(app, log);
  installJsonParser(app);
  // A request that failed because PostgreSQL or Redis is away starts the watch that says so and waits for it.
  app.addHook('onError', async (_request, _reply, err) => {
    rt.services.failed(err);
  });
  installAuth(app, rt.config);
  installGuard(app, { authenticated: Boolean(rt.config.HUBFLOW_API_TOKEN), boardWritable: rt.config.HUBFLOW_BOARD_WRITABLE });
  app.addHook('onResponse', async (request, reply) => {
    const level = reply.statusCode >= 500 ? 'error' : request.method === 'GET' || request.method === 'HEAD' ? 'debug' : 'info';
    log[level]({ method: request.method, url: loggedUrl(request.url), status: reply.statusCode, ms: Math.round(reply.elapsedTime) }, 'request');
  });

  registerHealth(app, rt);
  registerApi(app, rt);
  registerActionRoutes(app, rt);
  registerMetrics(app, rt);
  registerPages(app, rt);
  registerLive(app, rt);
  registerRejects(app, rt);
  registerOutboxPage(app, rt);
  registerSlaPage(app, rt);
  registerDagPage(app, rt);
  registerDeadLettersPage(app, rt);
  registerGantt(app, rt);
  registerLogs(app, rt);
  registerIntegrations(app, rt);
  await registerBoard(app, rt);
  return app;
}

export interface StartServerOptions {
  /** When HUBFLOW_PORT is taken, listen on a free port instead of failing (the demo). */
  fallbackToFreePort?: boolean;
}

export interface RunningServer {
  url: string;
  close(): Promise<void>;
}

/** Listens on HUBFLOW_HOST:HUBFLOW_PORT (0: any free port). */
export async function startServer(rt: Runtime, options: StartServerOptions = {}): Promise<RunningServer> {
  const host = rt.config.HUBFLOW_HOST;
  checkServable(rt.config);
  let app = await createServer(rt);
  try {
    await app.listen({ host, port: rt.config.HUBFLOW_PORT });
  } catch (err) {
    await app.close();
    if (!options.fallbackToFreePort || (err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    rt.log.warn({ port: rt.config.HUBFLOW_PORT }, 'port in use; listening on a free port instead');
    app = await createServer(rt);
    await app.listen({ host, port: 0 });
  }
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : rt.config.HUBFLOW_PORT;
  const running = app;
  return {
    url: `http://${urlHost(host)}:${port}`,
    close: () => running.close(),
  };
}

/** A host for URLs a person can open: wildcard binds become loopback, IPv6 gets brackets. */
function urlHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::') return '[::1]';
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}
