#!/usr/bin/env node
// `npm run build`: compiles hubflow and its bundled DAGs to dist/, which `hubflow` runs so it
// starts without a TypeScript loader. The files the code reads next to itself (XSD schemas)
// are copied along, and dist/.built is written last: bin/hubflow.js runs dist/ only while that
// stamp is newer than every source file, so a half-done or outdated build is never run.
// With --if-typescript (the `prepare` script, run by `npm ci`), an install without the
// TypeScript compiler (`npm ci --omit=dev`) skips the build, as does an install before the
// sources are there (the Dockerfile's first layer): hubflow then runs from its sources.
import { spawnSync } from 'node:child_process';
import { cpSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
writeFileSync(`${dist}/.built`, `${new Date().toISOString()}\n`);
