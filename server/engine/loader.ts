import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DagDefinitionError } from '../errors.ts';
import { DagSpecError, isDag, type Dag } from './dag.ts';

export interface DagRegistry {
  dags: Map<string, Dag>;
  /** DAG files that failed to load; the other files' DAGs are still in `dags`. */
  errors: DagDefinitionError[];
}

const DAG_FILE = /^[^._].*\.(ts|mts|js|mjs)$/;

/**
 * Loads every DAG file in a folder. One bad file (syntax error, invalid DAG, duplicate id)
 * is reported with its file, DAG and field, and does not stop the others.
 */
export async function loadDags(dir: string): Promise<DagRegistry> {
  const registry: DagRegistry = { dags: new Map(), errors: [] };
  let files: string[];
  try {
    files = (await readdir(dir)).filter((f) => DAG_FILE.test(f) && !f.endsWith('.d.ts')).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return registry;
    throw err;
  }
  for (const name of files) {
    const file = path.resolve(dir, name);
    const fromCwd = path.relative(process.cwd(), file);
    const relative = fromCwd && !fromCwd.startsWith('..') ? fromCwd : file;
    let exports: Record<string, unknown>;
    try {
      exports = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    } catch (err) {
      registry.errors.push(asDefinitionError(relative, err));
      continue;
    }
    const found = Object.values(exports).filter(isDag);
    if (!found.length) {
      registry.errors.push(new DagDefinitionError(relative, undefined, 'export', 'no DAG exported (export default defineDag({ ... }))'));
      continue;
    }
    for (const dag of new Set(found)) {
      const existing = registry.dags.get(dag.id);
      if (existing) {
        registry.errors.push(new DagDefinitionError(relative, dag.id, 'id', `duplicate DAG id, already defined in ${existing.file}`));
        continue;
      }
      registry.dags.set(dag.id, Object.freeze({ ...dag, file: relative }));
    }
  }
  return registry;
}

function asDefinitionError(file: string, err: unknown): DagDefinitionError {
  if (err instanceof DagSpecError || (err instanceof Error && err.name === 'DagSpecError')) {
    const e = err as DagSpecError;
    return new DagDefinitionError(file, e.dagId, e.field, e.problem);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DagDefinitionError(file, undefined, '(module)', `cannot be loaded: ${message.split('\n')[0]}`);
}
