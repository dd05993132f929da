// Module resolve hook for DAG files, which may live in any folder:
// - `import { defineDag } from 'hubflow'` gets this package's entry, so every DAG shares one copy
//   of the API with the runtime that loads it (resolved through the rest of the chain, so the
//   TypeScript loader claims it);
// - a `.ts` file outside any package that says `"type": "module"` is still an ES module: DAG files
//   are written with `import`, and Node would otherwise take such a file for CommonJS.
const entry = new URL('../index.ts', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier === 'hubflow' ? entry : specifier, context);
  if (resolved.format === 'commonjs' && resolved.url.endsWith('.ts') && !resolved.url.includes('/node_modules/')) {
    return { ...resolved, format: 'module' };
  }
  return resolved;
}
