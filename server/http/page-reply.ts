import type { FastifyReply } from 'fastify';
import { page, type SafeHtml } from './html.ts';
import { ACTIONS_SCRIPT_SOURCE } from './actions-ui.ts';
import { LIVE_SCRIPT_SOURCE } from './refresh.ts';

/**
 * No script runs on a page but the live refresh's and the action buttons', each allowed by its
 * hash (so a DAG id or an error message can never become script); they fetch from this server only. Forms (the
 * filters) submit to this server only.
 */
const CSP = `default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; script-src ${LIVE_SCRIPT_SOURCE} ${ACTIONS_SCRIPT_SOURCE}; connect-src 'self'; form-action 'self'; frame-ancestors 'none'`;

export function sendPage(reply: FastifyReply, status: number, title: string, body: SafeHtml): FastifyReply {
  return reply
    .code(status)
    .header('content-security-policy', CSP)
    .header('x-content-type-options', 'nosniff')
    .type('text/html; charset=utf-8')
    .send(page(title, body));
}
