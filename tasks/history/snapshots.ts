import { readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { assertTenantId, GLOBAL_SCOPE, pathUnder } from '../../hub/tenant-id.ts';
import { scopeLabel, type Scope } from './layout.ts';

/**
 * Where a run's staged snapshots live, and their pruning: under the staging folder, one folder
 * per DAG, run and scope; every path under it is checked to stay there.
 */

/** Whose snapshots: the staging folder, the DAG and the run. */
export interface SnapshotPlace {
  stagingDir: string;
  dagId: string;
  runId: number;
}

/** The staging folder of all runs of this DAG. */
const runsDir = (p: SnapshotPlace) => pathUnder(p.stagingDir, 'history', p.dagId);
const scopeName = (scope: Scope) => (scope === null ? GLOBAL_SCOPE : assertTenantId(scope));

export function scopeDir(p: SnapshotPlace, scope: Scope, runId = p.runId): string {
  return pathUnder(runsDir(p), `run-${runId}`, scopeName(scope));
}

/**
 * Beside a scope's staged files: the snapshot they hold, so pruning knows which are older.
 * Pruning removes the files and keeps this marker, noting which later run's clean
 * reconciliation made them unneeded: a clear of the run's load or reconcile then says so.
 */
const SNAPSHOT_MARKER = 'snapshot.json';

interface SnapshotMarker {
  runId: number;
  snapshotAt: string;
  /** Set when the files were pruned: the run whose newer snapshot of the scope reconciled clean. */
  prunedAfter?: { runId: number; snapshotAt: string };
}

async function readMarker(dir: string): Promise<SnapshotMarker | null> {
  return readFile(path.join(dir, SNAPSHOT_MARKER), 'utf8').then(
    (text) => JSON.parse(text) as SnapshotMarker,
    () => null,
  );
}

/** Marks a scope's staged files as this run's snapshot. */
export async function markSnapshot(dir: string, runId: number, snapshotAt: string): Promise<void> {
  const marker: SnapshotMarker = { runId, snapshotAt };
  await writeFile(path.join(dir, SNAPSHOT_MARKER), JSON.stringify(marker), { mode: 0o600 });
}

/** The conf that re-syncs one scope (see listScopes). */
export const resyncConf = (scope: Scope) => JSON.stringify(scope === null ? { tenants: [], global: true } : { tenants: [scope] });

/** Why a run's staged snapshot is gone, when a later clean reconciliation pruned it. */
export async function prunedReason(p: SnapshotPlace, scope: Scope, snapshotAt: string): Promise<string | null> {
  const marker = await readMarker(scopeDir(p, scope));
  const after = marker?.snapshotAt === snapshotAt ? marker.prunedAfter : undefined;
  if (!after) return null;
  return (
    `${scopeLabel(scope)}: run ${after.runId} reconciled a newer snapshot of this scope (${after.snapshotAt}) clean, so this run's (${snapshotAt}) ` +
    `is superseded and its staged files were pruned; nothing to do. The newer reconciliation: hubflow reconcile report --run ${after.runId}`
  );
}

/**
 * Once a scope's snapshot is loaded and reconciled clean, the scope's older snapshots (of any
 * run) are no longer needed: each was applied or superseded, and a clear of its load or
 * reconcile skips, saying so (the marker stays). This run's stays, so its reconciliation can be
 * repeated (clear the reconcile task) and audited, until a later snapshot reconciles clean.
 * A folder without a marker (an extract under way, or broken) goes only if its run is older.
 */
export async function pruneStaging(p: SnapshotPlace, scope: Scope, snapshotAt: string): Promise<void> {
  for (const dir of await readdir(runsDir(p)).catch(() => [] as string[])) {
    const id = Number(/^run-(\d+)$/.exec(dir)?.[1]);
    if (!id || id === p.runId) continue;
    const staged = scopeDir(p, scope, id);
    const marker = await readMarker(staged);
    if (marker?.prunedAfter || !(marker ? marker.snapshotAt < snapshotAt : id < p.runId)) continue;
    for (const file of await readdir(staged).catch(() => [] as string[])) {
      if (file !== SNAPSHOT_MARKER) await rm(path.join(staged, file), { recursive: true, force: true });
    }
    if (marker)
      await writeFile(path.join(staged, SNAPSHOT_MARKER), JSON.stringify({ ...marker, prunedAfter: { runId: p.runId, snapshotAt } } satisfies SnapshotMarker), {
        mode: 0o600,
      });
    else {
      await rm(staged, { recursive: true, force: true });
      await rmdir(path.join(runsDir(p), dir)).catch(() => undefined); // only when it was the run's last scope
    }
  }
}
