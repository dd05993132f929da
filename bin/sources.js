// What dist/ is compiled from, relative to the package root: a change to any of these makes
// the build outdated.
import { readdirSync, statSync } from 'node:fs';
import path from 'node:path';

export const SOURCES = [
  'index.ts',
  'package.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'core',
  'cli',
  'hub',
  'demo',
  'cdc',
  'warehouse',
  'server',
  'tasks',
  'transforms',
  'jurisdictions',
  'dags',
];

/**
 * Whether dist/ was built after the last change to any source file (false when never built).
 * A folder's own time covers the files deleted from it.
 */
export function builtIsCurrent(root) {
  const built = statSync(path.join(root, 'dist', '.built'), { throwIfNoEntry: false })?.mtimeMs;
  if (built === undefined) return false;
  for (const source of SOURCES) {
    const stat = statSync(path.join(root, source), { throwIfNoEntry: false });
    if (!stat) continue;
    if (stat.mtimeMs > built) return false;
    if (!stat.isDirectory()) continue;
    for (const file of readdirSync(path.join(root, source), { recursive: true })) {
      if (statSync(path.join(root, source, file)).mtimeMs > built) return false;
    }
  }
  return true;
}
