// Module resolve hook: `import { defineDag } from 'hubflow'` in any DAG file gets this
// package's entry, so every DAG shares one copy of the API with the runtime that loads it.
const entry = new URL('../index.ts', import.meta.url).href;

export async function resolve(specifier, context, nextResolve) {
  if (specifier === 'hubflow') return { url: entry, shortCircuit: true };
  return nextResolve(specifier, context);
}
