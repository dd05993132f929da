import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DagDefinitionError, SpecError } from '../errors.ts';
import { isDag, type Dag } from './dag.ts';
import { isResource, type Resource } from './resources.ts';

export interface DagRegistry {
  dags: Map<string, Dag>;
  /** Shared systems the DAGs' tasks use, declared beside them with defineResource. */
  resources: Map<string, Resource>;
  /** DAG files that failed to load; the other files' DAGs are still in `dags`. */
  errors: DagDefinitionError[];
}

/** A registry of DAGs and resources given in code (tests, benchmarks, embedding). */
export function registryOf(dags: readonly Dag[], resources: readonly Resource[] = []): DagRegistry {
  const registry: DagRegistry = { dags: new Map(dags.map((d) => [d.id, d])), resources: new Map(resources.map((r) => [r.id, r])), errors: [] };
  checkUses(registry);
  if (registry.errors.length) throw registry.errors[0];
  return registry;
}

/** Drops DAGs whose tasks use an undeclared resource, with an error naming the task's field. */
function checkUses(registry: DagRegistry): void {
  for (const dag of [...registry.dags.values()]) {
    for (const task of dag.tasks.values()) {
      const unknown = task.uses.find((r) => !registry.resources.has(r));
      if (unknown) {
        const declared = [...registry.resources.keys()].join(', ') || 'none';
        registry.errors.push(new DagDefinitionError(dag.file ?? '(inline)', dag.id, `tasks.${task.id}.uses`, `unknown resource '${unknown}' (declared: ${declared})`));
        registry.dags.delete(dag.id);
        break;
      }
    }
  }
}

const DAG_FILE = /^[^._].*\.(ts|mts|js|mjs)$/;

/**
 * Loads every DAG file in a folder. One bad file (syntax error, invalid DAG, duplicate id)
 * is reported with its file, DAG and field, and does not stop the others.
 */
export async function loadDags(dir: string): Promise<DagRegistry> {
  const registry: DagRegistry = { dags: new Map(), resources: new Map(), errors: [] };
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
    const resources = Object.values(exports).filter(isResource);
    if (!found.length && !resources.length) {
      registry.errors.push(new DagDefinitionError(relative, undefined, 'export', 'no DAG exported (export default defineDag({ ... }))'));
      continue;
    }
    for (const resource of new Set(resources)) {
      const existing = registry.resources.get(resource.id);
      if (existing && existing !== resource) {
        registry.errors.push(new DagDefinitionError(relative, resource.id, 'id', `duplicate resource id, already defined in ${existing.file}`, 'resource'));
        continue;
      }
      if (!existing) registry.resources.set(resource.id, Object.freeze({ ...resource, file: relative }));
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
  checkUses(registry);
  return registry;
}

function asDefinitionError(file: string, err: unknown): DagDefinitionError {
  // By name as well: a DAG folder with its own copy of hubflow throws its own SpecError class.
  if (err instanceof SpecError || (err instanceof Error && err.name === 'SpecError')) {
    const e = err as SpecError;
    return new DagDefinitionError(file, e.id, e.field, e.problem, e.kind);
  }
  const message = err instanceof Error ? err.message : String(err);
  return new DagDefinitionError(file, undefined, '(module)', `cannot be loaded: ${message.split('\n')[0]}`);
}
