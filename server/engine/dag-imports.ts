import { readdir } from 'node:fs/promises';
import { register } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadDags, type DagRegistry, type LoadOptions } from './loader.ts';

/**
 * The folder of DAGs shipped with hubflow, used when HUBFLOW_DAGS_DIR is not set (compiled,
 * their compiled copy, so listing them needs no TypeScript loader).
 */
export const BUNDLED_DAGS_DIR = fileURLToPath(new URL('../../dags', import.meta.url));

/** hubflow runs either from its TypeScript sources or from the compiled copy in dist/ (bin/hubflow.js). */
const RUNNING_COMPILED = !import.meta.url.endsWith('.ts');
const TYPESCRIPT_FILE = /\.m?ts$/;

let resolverRegistered = false;
let typeScriptRegistered = false;

/** Loads a folder of DAG files, making them importable by this process first. */
export async function loadDagFolder(dir: string, options: LoadOptions = {}): Promise<DagRegistry> {
  await prepareDagImports(dir);
  return loadDags(dir, options);
}

/**
 * Makes the DAG files of a folder importable before they are loaded. From the sources, whoever
 * runs them (bin/hubflow.js through tsx, vitest) has done it already. Compiled, the resolver of
 * `'hubflow'` is registered on first use, and the TypeScript loader only for a folder that holds
 * TypeScript, so the commands that load no DAG start without either.
 */
async function prepareDagImports(dir: string): Promise<void> {
  // The bundled DAGs' compiled copies import dist/index.js by its path (bin/build.js): they need
  // no hook, and a hook, once registered, makes every later import of the process a round trip
  // to its thread.
  if (!RUNNING_COMPILED || path.resolve(dir) === BUNDLED_DAGS_DIR) return;
  if (!typeScriptRegistered && (await holdsTypeScript(dir))) {
    const { register: registerTypeScript } = await import('tsx/esm/api');
    registerTypeScript();
    typeScriptRegistered = true;
    // The hook registered last runs first: the resolver must come before the TypeScript loader's.
    resolverRegistered = false;
  }
  if (resolverRegistered) return;
  register('../../../bin/resolve-hubflow.js', import.meta.url, {
    data: {
      entry: new URL('../../index.js', import.meta.url).href,
      compiled: { root: new URL('../../../', import.meta.url).href, dist: new URL('../../', import.meta.url).href },
    },
  });
  resolverRegistered = true;
}

async function holdsTypeScript(dir: string): Promise<boolean> {
  const files = await readdir(dir).catch(() => []);
  return files.some((f) => TYPESCRIPT_FILE.test(f) && !f.endsWith('.d.ts'));
}
