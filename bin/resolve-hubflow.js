// Module resolve hook for DAG files, which may live in any folder:
// - `import { defineDag } from 'hubflow'` gets the entry of the copy of hubflow that is running
//   (index.ts, or dist/index.js when running compiled), so every DAG shares one copy of the API
//   with the runtime that loads it (resolved through the rest of the chain, so the TypeScript
//   loader claims it);
// - when running compiled, a DAG's import of one of hubflow's own TypeScript sources
//   (`../tasks/example.ts`) gets its compiled file, for the same reason;
// - a `.ts` file outside any package that says `"type": "module"` is still an ES module: DAG files
//   are written with `import`, and Node would otherwise take such a file for CommonJS.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

let entry;
/** Set when running compiled: the package root and its dist/ folder, as file URLs ending in '/'. */
let compiled;

export function initialize(data) {
  entry = data.entry;
  compiled = data.compiled;
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier === 'hubflow' ? entry : specifier, context);
  const own = compiled && compiledCopy(resolved.url);
  if (own) return { url: own, format: 'module', shortCircuit: true };
  if (resolved.format === 'commonjs' && resolved.url.endsWith('.ts') && !resolved.url.includes('/node_modules/')) {
    return { ...resolved, format: 'module' };
  }
  return resolved;
}

function compiledCopy(url) {
  const { root, dist } = compiled;
  if (!url.endsWith('.ts') || !url.startsWith(root) || url.startsWith(dist) || url.includes('/node_modules/')) return undefined;
  const copy = `${dist}${url.slice(root.length, -'.ts'.length)}.js`;
  return existsSync(fileURLToPath(copy)) ? copy : undefined;
}
