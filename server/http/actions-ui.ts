import { createHash } from 'node:crypto';
import type { FastifyRequest } from 'fastify';
import { LIVE_TI_STATES, type DagRunRow, type TaskInstanceRow, type TiState } from '../store/schema.ts';
import { requestAccess } from './auth.ts';
import { html, SafeHtml } from './html.ts';

/*
 * The pages' action buttons. Each posts JSON to the API route of its action (actions.ts), with
 * the page's own origin and cookie, so guard.ts lets it through exactly as it would a script;
 * then the page reloads to show what the store now says. Buttons are drawn only for a request
 * whose credentials may act: no form, no build step, one small script the CSP allows by hash.
 */

/** The page's script: no data in it (buttons carry theirs in data- attributes), so its hash is fixed. */
const SCRIPT = `(() => {
  const say = (text, bad) => {
    const el = document.getElementById('action-status');
    if (el) { el.textContent = text; el.className = bad ? 'err' : 'muted'; }
  };
  const bodyOf = (button) => {
    const body = JSON.parse(button.dataset.body || '{}');
    if (button.dataset.conf) {
      const text = document.getElementById(button.dataset.conf).value.trim();
      let conf;
      try { conf = text ? JSON.parse(text) : {}; } catch (err) { throw new Error('conf is not JSON: ' + err.message); }
      if (conf === null || typeof conf !== 'object' || Array.isArray(conf)) throw new Error('conf must be a JSON object, like {"tenant": "acme"}');
      body.conf = conf;
    }
    if (button.dataset.pick) {
      const ids = [...document.querySelectorAll(button.dataset.pick)].filter((b) => b.checked).map((b) => Number(b.value));
      if (!ids.length) throw new Error('select the dead letters to replay first');
      body.ids = ids;
    }
    return body;
  };
  document.addEventListener('click', async (event) => {
    const button = event.target.closest('button[data-url]');
    if (!button || button.disabled) return;
    if (button.dataset.confirm && !confirm(button.dataset.confirm)) return;
    button.disabled = true;
    try {
      const res = await fetch(button.dataset.url, {
        method: 'POST', credentials: 'same-origin',
        headers: { 'content-type': 'application/json' }, body: JSON.stringify(bodyOf(button)),
      });
      const answer = await res.json().catch(() => ({}));
      if (!res.ok) throw new Error(answer.message || res.status + ' ' + res.statusText);
      say((button.dataset.done || 'done') + '; reloading...', false);
      if (button.dataset.go && answer.id) location.assign(button.dataset.go + answer.id);
      else location.reload();
    } catch (err) {
      say(err.message, true);
      button.disabled = false;
    }
  });
  document.addEventListener('change', (event) => {
    const all = event.target.closest('input[data-all]');
    if (all) for (const box of document.querySelectorAll(all.dataset.all)) box.checked = all.checked;
  });
})();`;

/** The buttons' script as a CSP source, by its hash (page-reply.ts allows it beside the live refresh's). */
export const ACTIONS_SCRIPT_SOURCE = `'sha256-${createHash('sha256').update(SCRIPT).digest('base64')}'`;

const STYLE = `<style>
button.act{font:12px system-ui,sans-serif;padding:1px 6px;margin:0 2px 2px 0;border:1px solid #9aa5b4;border-radius:3px;background:#f6f8fa;cursor:pointer}
button.act:hover{background:#e5e9ef}button.act.danger{border-color:#dc2626;color:#991b1b}button.act:disabled{opacity:.5;cursor:wait}
.actions{margin:.6rem 0}.actions textarea{font:12px ui-monospace,monospace;width:100%;max-width:40rem;display:block;margin:.3rem 0}
</style>`;

/** Whether the request's credentials may act: no token on loopback, or the operator's token; never the read token. */
export function canAct(request: FastifyRequest): boolean {
  return requestAccess(request).role === 'operate';
}

/** The script, its style and the line that reports how an action went; once per page that has buttons. */
export function actionsScript(): SafeHtml {
  return html`${new SafeHtml(STYLE)}<p id="action-status" class="muted" role="status"></p><script>${new SafeHtml(SCRIPT)}</script>`;
}

interface ButtonOptions {
  confirm?: string;
  /** After success, go to this prefix + the answer's id (a new run's page). */
  go?: string;
  /** The id of a textarea whose JSON becomes the body's `conf`. */
  conf?: string;
  /** A selector of checkboxes whose checked values become the body's `ids`. */
  pick?: string;
  done?: string;
  danger?: boolean;
  name?: string;
  title?: string;
}

/** One action button: a POST of `body` to `url`. */
export function actionButton(label: string, url: string, body: Record<string, unknown>, o: ButtonOptions = {}): SafeHtml {
  return html`<button type="button" class="act${o.danger ? ' danger' : ''}" data-url="${url}" data-body="${JSON.stringify(body)}"${o.name ? html` data-name="${o.name}"` : ''}${
    o.confirm ? html` data-confirm="${o.confirm}"` : ''
  }${o.go ? html` data-go="${o.go}"` : ''}${o.conf ? html` data-conf="${o.conf}"` : ''}${o.pick ? html` data-pick="${o.pick}"` : ''} data-done="${o.done ?? `${label}: done`}"${o.title ? html` title="${o.title}"` : ''}>${label}</button>`;
}

const FAILED: ReadonlySet<TiState> = new Set(['failed', 'upstream_failed', 'cancelled']);
const LIVE: ReadonlySet<TiState> = new Set(LIVE_TI_STATES);

/** The run's own buttons (cancel, clear failed, mark the run success or failed), given the states its instances are in, and the script. */
export function runActions(run: DagRunRow, summary: readonly { state: string }[]): SafeHtml {
  if (run.run_type === 'test') return html``;
  const instanceStates = summary.map((s) => s.state as TiState);
  const base = `/api/runs/${run.id}`;
  const open = run.state === 'queued' || run.state === 'running';
  const anyFailed = instanceStates.some((s) => FAILED.has(s));
  return html`<div class="actions" id="run-actions">
${open ? actionButton('Cancel run', `${base}/cancel`, {}, { confirm: `Cancel run ${run.id}? Its running tasks are aborted.`, danger: true, name: 'cancel' }) : ''}
${anyFailed && !instanceStates.some((s) => LIVE.has(s)) ? actionButton('Clear failed', `${base}/clear`, { failedOnly: true }, { name: 'clear-failed' }) : ''}
${run.state !== 'success' ? actionButton('Mark run success', `${base}/mark`, { state: 'success' }, { confirm: `Mark run ${run.id} success?`, name: 'mark-run-success' }) : ''}
${run.state !== 'failed' ? actionButton('Mark run failed', `${base}/mark`, { state: 'failed' }, { confirm: `Mark run ${run.id} failed?`, danger: true, name: 'mark-run-failed' }) : ''}
</div>
${actionsScript()}`;
}

/** A task instance's buttons: clear it, clear it and its downstream, mark it success or failed. */
export function taskActions(run: DagRunRow, ti: Pick<TaskInstanceRow, 'task_id' | 'map_index' | 'state'>): SafeHtml {
  if (run.run_type === 'test') return html``;
  const base = `/api/runs/${run.id}`;
  const task = encodeURIComponent(ti.task_id);
  const map = ti.map_index >= 0 ? { map: ti.map_index } : {};
  const markable = ti.state !== 'running' && (run.state === 'running' || run.state === 'success' || run.state === 'failed');
  const clearable = !LIVE.has(ti.state) && ti.state !== 'scheduled';
  // A clear resets a task whole: a mapped one expands afresh, every item running again.
  const title = ti.map_index >= 0 ? `clears ${ti.task_id} whole: every map index runs again` : undefined;
  return html`<span class="actions-inline" data-task="${ti.task_id}" data-map="${ti.map_index}">
${clearable ? actionButton('clear', `${base}/clear`, { tasks: [ti.task_id], downstream: false }, { name: 'clear', title }) : ''}
${clearable ? actionButton('clear + downstream', `${base}/clear`, { tasks: [ti.task_id] }, { name: 'clear-downstream', title }) : ''}
${markable && ti.state !== 'success' ? actionButton('mark success', `${base}/tasks/${task}/mark`, { state: 'success', ...map }, { name: 'mark-success' }) : ''}
${markable && ti.state !== 'failed' ? actionButton('mark failed', `${base}/tasks/${task}/mark`, { state: 'failed', ...map }, { danger: true, name: 'mark-failed' }) : ''}
</span>`;
}

/** The DAG page's buttons: trigger with a conf, pause or unpause. */
export function dagActions(dagId: string, paused: boolean): SafeHtml {
  const base = `/api/dags/${encodeURIComponent(dagId)}`;
  return html`<h2 id="actions">Actions</h2>
<div class="actions">
<label for="trigger-conf">Conf for a manual run (a JSON object, handed to every task as <code>ctx.conf</code>)</label>
<textarea id="trigger-conf" rows="3" spellcheck="false">{}</textarea>
${actionButton('Trigger run', `${base}/runs`, {}, { conf: 'trigger-conf', go: '/runs/', name: 'trigger' })}
${paused ? actionButton('Unpause', `${base}/unpause`, {}, { name: 'unpause' }) : actionButton('Pause', `${base}/pause`, {}, { name: 'pause' })}
</div>
${actionsScript()}`;
}
