import { spawnSync } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { DagDefinitionError, SpecError } from '../../core/errors.ts';
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

/**
 * Drops DAGs whose tasks use an undeclared resource, with an error naming the task's field. A
 * resource a task names by object is declared by that: the registry takes it unless it already
 * holds one of that id (the loader's copy of the same export, with its file).
 */
function checkUses(registry: DagRegistry): void {
  for (const dag of registry.dags.values()) {
    for (const r of dag.resources) if (!registry.resources.has(r.id)) registry.resources.set(r.id, Object.freeze({ ...r, file: dag.file }));
  }
  for (const dag of [...registry.dags.values()]) {
    for (const task of dag.tasks.values()) {
      const unknown = task.uses.find((r) => !registry.resources.has(r));
      if (unknown) {
        const declared = [...registry.resources.keys()].join(', ') || 'none';
        registry.errors.push(
          new DagDefinitionError(dag.file ?? '(inline)', dag.id, `tasks.${task.id}.uses`, `unknown resource '${unknown}' (declared: ${declared})`),
        );
        registry.dags.delete(dag.id);
        break;
      }
    }
  }
}

const DAG_FILE = /^[^._].*\.(ts|mts|js|mjs)$/;

/** How long one DAG file's import may take: every process loads the folder before it starts. */
export const DAG_IMPORT_TIMEOUT_MS = 30_000;

export interface LoadOptions {
  /** The time limit on each file's import (DAG_IMPORT_TIMEOUT_MS unless given). */
  importTimeoutMs?: number;
}

/**
 * Loads every DAG file in a folder. One bad file (syntax error, invalid DAG, duplicate id)
 * is reported with its file, DAG and field, and does not stop the others.
 */
export async function loadDags(dir: string, options: LoadOptions = {}): Promise<DagRegistry> {
  const timeoutMs = options.importTimeoutMs ?? DAG_IMPORT_TIMEOUT_MS;
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
      exports = await importWithin(file, timeoutMs);
    } catch (err) {
      registry.errors.push(asDefinitionError(relative, err, file));
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

/**
 * A file whose top-level await never settles would hold every process at start-up: past the
 * limit it is reported as broken and the other files load. Its import cannot be cancelled; it
 * stays pending, harmlessly.
 */
async function importWithin(file: string, timeoutMs: number): Promise<Record<string, unknown>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`its import did not settle within ${timeoutMs / 1000}s (a top-level await that never ends?)`)), timeoutMs);
  });
  try {
    return (await Promise.race([import(pathToFileURL(file).href), late])) as Record<string, unknown>;
  } finally {
    clearTimeout(timer);
  }
}

// How esbuild (through tsx) reports a file it cannot parse: 'path:line:column: ERROR: text', column from 0.
const TRANSFORM_ERROR = /^(.+):(\d+):(\d+): ERROR: (.+)$/m;

/** Where in the DAG file it failed: the place it does not parse, or the line that threw while it loaded. */
function locate(err: ErrorLike, absolute: string): { field: string; problem: string } | undefined {
  const syntax = TRANSFORM_ERROR.exec(err.message);
  if (syntax) {
    const more = /failed with (\d+) errors/.exec(err.message);
    const others = more ? ` (and ${Number(more[1]) - 1} more)` : '';
    return { field: '(syntax)', problem: `line ${syntax[2]}, column ${Number(syntax[3]) + 1}: ${syntax[4]}${others}` };
  }
  if (err.name === 'SyntaxError') {
    const checked = checkSyntax(absolute);
    if (checked) return { field: '(syntax)', problem: `${checked}: ${err.message.split('\n')[0]}` };
  }
  const frame = err.stack?.split('\n').find((l) => l.includes(absolute));
  const at = frame && new RegExp(`${escapeRegExp(absolute)}:(\\d+)(?::(\\d+))?`).exec(frame);
  if (!at) return undefined;
  const where = `line ${at[1]}${at[2] ? `, column ${at[2]}` : ''}`;
  const message = err.message.split('\n')[0];
  return err.name === 'SyntaxError'
    ? { field: '(syntax)', problem: `${where}: ${message}` }
    : { field: '(module)', problem: `cannot be loaded: ${message} (${where})` };
}

/**
 * 'line L, column C' of a SyntaxError in a file Node parses itself (.mjs), whose error carries
 * no location: `node --check` prints the line and a caret under the column.
 */
function checkSyntax(absolute: string): string | undefined {
  const checked = spawnSync(process.execPath, ['--check', absolute], { encoding: 'utf8', timeout: 10_000 });
  const at = /:(\d+)\n.*\n( *)\^/.exec(checked.stderr ?? '');
  return at ? `line ${at[1]}, column ${at[2]!.length + 1}` : undefined;
}

interface ErrorLike {
  name?: string;
  message: string;
  stack?: string;
}

function isErrorLike(err: unknown): err is ErrorLike {
  return typeof err === 'object' && err !== null && typeof (err as { message?: unknown }).message === 'string';
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

function asDefinitionError(file: string, err: unknown, absolute: string): DagDefinitionError {
  // By name as well: a DAG folder with its own copy of hubflow throws its own SpecError class.
  if (err instanceof SpecError || (err instanceof Error && err.name === 'SpecError')) {
    const e = err as SpecError;
    return new DagDefinitionError(file, e.id, e.field, e.problem, e.kind);
  }
  // Duck-typed: an error may arrive as a plain object (from another realm, or serialised by a test runner).
  const located = isErrorLike(err) ? locate(err, absolute) : undefined;
  if (located) return new DagDefinitionError(file, undefined, located.field, located.problem);
  const message = err instanceof Error ? err.message : String(err);
  return new DagDefinitionError(file, undefined, '(module)', `cannot be loaded: ${message.split('\n')[0]}`);
}
