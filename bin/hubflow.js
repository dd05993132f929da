#!/usr/bin/env node
// The `hubflow` command. DAG files are TypeScript and may live anywhere, so the process
// loads TypeScript through tsx and resolves the bare specifier 'hubflow' to this package,
// whether or not the DAG's folder has a node_modules of its own.
import { register } from 'node:module';
import { register as registerTypeScript } from 'tsx/esm/api';

registerTypeScript();
register('./resolve-hubflow.js', import.meta.url);
await import('../server/cli.ts');
