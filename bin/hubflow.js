#!/usr/bin/env node
// The `hubflow` command. It runs the compiled JavaScript in dist/ (`npm run build`, run by
// `npm ci`) when that is current, so a command starts without a TypeScript loader: the loader
// is registered only when a folder of TypeScript DAGs is loaded (server/engine/dag-imports.ts).
// Without a current build (an install without the compiler, a source edited since) it runs the
// TypeScript sources through tsx, as fast as that allows, with the same behaviour.
import { register } from 'node:module';
import { fileURLToPath } from 'node:url';
import { builtIsCurrent } from './sources.js';

if (builtIsCurrent(fileURLToPath(new URL('../', import.meta.url)))) {
  await import('../dist/cli/main.js');
} else {
  const { register: registerTypeScript } = await import('tsx/esm/api');
  registerTypeScript();
  register('./resolve-hubflow.js', import.meta.url, { data: { entry: new URL('../index.ts', import.meta.url).href } });
  await import('../cli/main.ts');
}
