import type { Dag } from '../engine/dag.ts';
import type { CellSummary } from './grid.ts';
import { stateClass } from './grid.ts';
import { html, type SafeHtml } from './html.ts';

const BOX_W = 180;
const BOX_H = 44;
const GAP_X = 60;
const GAP_Y = 16;
const PAD = 8;
const LABEL_MAX = 24;

export interface GraphNode {
  id: string;
  layer: number;
  x: number;
  y: number;
}

/** Each task in the column of its longest path from a root, so every edge points right. */
export function layout(dag: Dag): { nodes: Map<string, GraphNode>; width: number; height: number } {
  const nodes = new Map<string, GraphNode>();
  const perLayer: number[] = [];
  // dag.tasks is in topological order: a task's upstreams are placed before it.
  for (const task of dag.tasks.values()) {
    const layer = task.upstream.reduce((max, up) => Math.max(max, (nodes.get(up)?.layer ?? -1) + 1), 0);
    const row = perLayer[layer] ?? 0;
    perLayer[layer] = row + 1;
    nodes.set(task.id, { id: task.id, layer, x: PAD + layer * (BOX_W + GAP_X), y: PAD + row * (BOX_H + GAP_Y) });
  }
  const rows = Math.max(1, ...perLayer);
  return {
    nodes,
    width: PAD * 2 + Math.max(1, perLayer.length) * (BOX_W + GAP_X) - GAP_X,
    height: PAD * 2 + rows * (BOX_H + GAP_Y) - GAP_Y,
  };
}

const short = (id: string) => (id.length > LABEL_MAX ? `${id.slice(0, LABEL_MAX - 1)}…` : id);

function caption(summary: CellSummary | undefined): string {
  if (!summary) return 'no run';
  if (!summary.mapped) return summary.state;
  const total = summary.counts.reduce((n, [, c]) => n + c, 0);
  return `${summary.state} · ${total} mapped`;
}

/** The DAG as an SVG: tasks as boxes in topological layers, edges between them, coloured by the latest run's states. */
export function dagGraph(dag: Dag, states: ReadonlyMap<string, CellSummary>): SafeHtml {
  const { nodes, width, height } = layout(dag);
  const edges = [...dag.tasks.values()].flatMap((task) =>
    task.upstream.map((up) => {
      const from = nodes.get(up)!;
      const to = nodes.get(task.id)!;
      const [x1, y1, x2, y2] = [from.x + BOX_W, from.y + BOX_H / 2, to.x, to.y + BOX_H / 2];
      const mid = (x1 + x2) / 2;
      return html`<path class="edge" data-from="${up}" data-to="${task.id}" d="M${x1} ${y1} C${mid} ${y1} ${mid} ${y2} ${x2 - 4} ${y2}" marker-end="url(#arrow)"/>`;
    }),
  );
  const boxes = [...nodes.values()].map((n) => {
    const summary = states.get(n.id);
    const state = summary?.state ?? 'none';
    // A branch follows only some of its downstream tasks: said on its box, so a skipped task below it reads as chosen against.
    const branch = dag.tasks.get(n.id)?.branch ? 'branch · ' : '';
    return html`<g class="node ${summary ? stateClass(state) : 'none'}${branch ? ' branch' : ''}" data-task="${n.id}" data-state="${state}" transform="translate(${n.x} ${n.y})">
<title>${n.id}: ${branch}${summary?.mapped ? summary.counts.map(([s, c]) => `${c} ${s}`).join(', ') : state}</title>
<rect width="${BOX_W}" height="${BOX_H}" rx="6"/><text x="10" y="18" class="id">${short(n.id)}</text><text x="10" y="35" class="st">${branch}${caption(summary)}</text></g>`;
  });
  return html`<svg class="graph" role="img" aria-label="Tasks of ${dag.id}" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" xmlns="http://www.w3.org/2000/svg">
<defs><marker id="arrow" viewBox="0 0 8 8" refX="7" refY="4" markerWidth="8" markerHeight="8" orient="auto"><path d="M0 0 L8 4 L0 8 z" class="tip"/></marker></defs>
${edges}
${boxes}
</svg>`;
}
