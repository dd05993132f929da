#!/usr/bin/env node
// `npm run build`: compiles hubflow and its bundled DAGs to dist/, which `hubflow` runs so it
// starts without a TypeScript loader. The files the code reads next to itself (XSD schemas)
// are copied along, and dist/.built is written last: bin/hubflow.js runs dist/ only while that
// stamp is newer than every source file, so a half-done or outdated build is never run.
// The package's own modules that import `'hubflow'` (the bundled DAGs and tasks, written as a DAG
// author writes them) get the relative path of dist/index.js instead: loading the bundled DAGs
// then needs no module resolve hook, whose thread would slow every later import of the process.
// With --if-typescript (the `prepare` script, run by `npm ci`), an install without the
// TypeScript compiler (`npm ci --omit=dev`) skips the build, as does an install before the
// sources are there (the Dockerfile's first layer): hubflow then runs from its sources.
import { spawnSync } from 'node:child_process';
import { cpSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { SOURCES } from './sources.js';

const root = fileURLToPath(new URL('../', import.meta.url));
const dist = `${root}dist`;

let tsc;
try {
  tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
} catch {
  if (!process.argv.includes('--if-typescript')) throw new Error('hubflow build: the TypeScript compiler is not installed (npm ci installs it)');
  process.stderr.write('hubflow build: no TypeScript compiler installed; hubflow runs from its TypeScript sources\n');
  process.exit(0);
}

rmSync(dist, { recursive: true, force: true });
const compiled = spawnSync(process.execPath, [tsc, '-p', `${root}tsconfig.build.json`], { stdio: 'inherit' });
if (compiled.status !== 0) {
  rmSync(dist, { recursive: true, force: true });
  process.exit(compiled.status ?? 1);
}
for (const dir of SOURCES.filter((s) => !s.includes('.'))) {
  cpSync(`${root}${dir}`, `${dist}/${dir}`, { recursive: true, filter: (src) => !src.endsWith('.ts') && !src.endsWith('.md') });
}
for (const dir of ['dags', 'tasks']) {
  for (const file of readdirSync(`${dist}/${dir}`, { recursive: true })) {
    if (!file.endsWith('.js')) continue;
    const compiledFile = path.join(dist, dir, file);
    const relative = path.relative(path.dirname(compiledFile), `${dist}/index.js`);
    const code = readFileSync(compiledFile, 'utf8');
    const own = code.replace(/(\bfrom\s*|\bimport\s*\(\s*)(['"])hubflow\2/g, (_, lead, quote) => `${lead}${quote}${relative}${quote}`);
    if (own !== code) writeFileSync(compiledFile, own);
  }
}
writeFileSync(`${dist}/.built`, `${new Date().toISOString()}\n`);
