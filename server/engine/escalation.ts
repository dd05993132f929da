import type { Logger } from '../../core/log.ts';

export interface Escalation {
  /** A task that died, a run that will miss its deadline, a task's own alarm (a reconciliation), an integration's SLO breached (no one run), or a CDC replication slot lagging or lost. */
  kind: 'dead_letter' | 'sla_miss' | 'task_alert' | 'slo_breach' | 'cdc_slot';
  dagId: string;
  runId?: number;
  taskId?: string;
  mapIndex?: number;
  tries?: number;
  owner?: string;
  message: string;
  details?: Record<string, unknown>;
}

/**
 * Raises an alert: always one structured log line (`event: "escalation"`), and a POST of the
 * same JSON to HUBFLOW_ALERT_WEBHOOK when set. A webhook that is down is logged, never thrown:
 * the failure being escalated must not be hidden behind a second one.
 */
export function createEscalator(log: Logger, webhook: string | undefined) {
  return async function escalate(e: Escalation): Promise<void> {
    log.error(
      { event: 'escalation', ...e },
      `escalation: ${e.dagId}${e.runId === undefined ? '' : ` run ${e.runId}`}${e.taskId ? ` task ${e.taskId}` : ''}: ${e.message}`,
    );
    if (!webhook) return;
    try {
      const res = await fetch(webhook, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ source: 'hubflow', ...e }),
        signal: AbortSignal.timeout(5_000),
      });
      if (!res.ok) log.warn({ event: 'webhook_failed', status: res.status }, 'alert webhook answered with an error');
    } catch (err) {
      log.warn({ event: 'webhook_failed', err }, 'alert webhook could not be reached');
    }
  };
}

export type Escalate = ReturnType<typeof createEscalator>;
