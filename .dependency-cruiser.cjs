// The floors of the house (README, "Architecture"), checked by `npm run deps` in .ci/run.
// A room may import the rooms listed below it, never one above it: the list runs from the roof
// down to the ground floor. Type-only imports count (tsPreCompilationDeps), as they tie the
// rooms together just the same.
const FLOORS = [
  // roof: what runs hubflow and what DAG authors write
  ['bin', '^bin/'],
  ['cli', '^cli/'],
  ['server/http', '^server/http/'],
  ['server/processes.ts', '^server/processes[.]ts$'],
  ['server/runtime.ts', '^server/runtime[.]ts$'],
  ['dags', '^dags/'],
  ['tasks', '^tasks/'],
  ['index.ts', '^index[.]ts$'],
  // middle: the engine and the systems it moves data between
  ['server/engine', '^server/engine/'],
  ['server/connections', '^server/connections/'],
  ['server/store', '^server/store/'],
  ['cdc', '^cdc/'],
  ['warehouse', '^warehouse/'],
  ['jurisdictions', '^jurisdictions/'],
  ['hub', '^hub/'],
  ['transforms', '^transforms/'],
  // ground
  ['core', '^core/'],
];

/** Everything but the rooms beside the house (demo/, bench/, test/), which production never imports. */
const PRODUCTION = '^(index[.]ts|bin|cdc|cli|core|dags|hub|jurisdictions|server|tasks|transforms|warehouse)(/|$)';

const upward = FLOORS.slice(1).map(([name, path], i) => ({
  name: `no-upward-from-${name.replace(/[/.]/g, '-')}`,
  comment: `${name} is below ${FLOORS.slice(0, i + 1)
    .map(([above]) => above)
    .join(', ')}: it imports none of them`,
  severity: 'error',
  from: { path },
  to: { path: FLOORS.slice(0, i + 1).map(([, above]) => above) },
}));

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      comment: 'no import cycle, type imports included: each module can be read, tested and loaded after what it imports',
      severity: 'error',
      from: {},
      to: { circular: true },
    },
    ...upward,
    {
      name: 'production-does-not-import-demo',
      comment: 'demo/ (the demo hub generator) is run by the CLI only; nothing else in production imports it',
      severity: 'error',
      from: { path: PRODUCTION, pathNot: '^cli/' },
      to: { path: '^demo/' },
    },
    {
      name: 'production-does-not-import-tests-or-benches',
      severity: 'error',
      from: { path: PRODUCTION },
      to: { path: '^(test|bench)/' },
    },
    {
      name: 'demo-is-beside-the-house',
      comment: 'the demo generator builds on the hub contract, the transforms and the ground floor only',
      severity: 'error',
      from: { path: '^demo/' },
      to: { path: PRODUCTION, pathNot: '^(hub|transforms|core)/' },
    },
    {
      name: 'tasks-use-the-public-api',
      comment: "tasks take the engine's API and error classes from 'hubflow' (index.ts) or core/, never from deep server paths",
      severity: 'error',
      from: { path: '^tasks/' },
      to: { path: '^server/' },
    },
    {
      name: 'jurisdictions-stand-alone',
      comment: 'a filing format knows its file and the shared identifier rules, not the engine, the hub or the warehouse',
      severity: 'error',
      from: { path: '^jurisdictions/' },
      to: { path: PRODUCTION, pathNot: '^(jurisdictions|transforms|core)/' },
    },
    {
      name: 'dags-are-declarations',
      comment: "a DAG file imports the public API ('hubflow') and task functions, nothing of the engine",
      severity: 'error',
      from: { path: '^dags/' },
      to: { path: PRODUCTION, pathNot: ['^(dags|tasks)/', '^index[.]ts$'] },
    },
    {
      name: 'cdc-reads-the-hub-and-writes-the-warehouse',
      comment: "change capture builds on the warehouse contract, the hub's data contract, the transforms and the ground floor",
      severity: 'error',
      from: { path: '^cdc/' },
      to: { path: PRODUCTION, pathNot: '^(cdc|warehouse|hub|transforms|core)/' },
    },
    {
      name: 'no-unresolvable',
      comment: 'every import resolves (a typo in a path, a package missing from package.json)',
      severity: 'error',
      from: {},
      // bin/hubflow.js runs dist/ (npm run build) when it is there.
      to: { couldNotResolve: true, pathNot: '^[.][.]/dist/' },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|node_modules)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    // 'hubflow' resolves to index.ts through package.json's exports, as Node resolves it.
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['types', 'import', 'node', 'default'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
  },
};
