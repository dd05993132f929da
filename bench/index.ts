/**
 * `npm run bench -- <name>`: runs one benchmark and prints its figures as JSON on stdout.
 * Each benchmark measures its own baseline in the same run, so the ratios survive a noisy machine.
 */
const benches: Record<string, () => Promise<unknown>> = {
  engine: async () => (await import('./engine.ts')).runEngineBench(),
  history: async () => (await import('./history.ts')).runHistoryBench(),
  incremental: async () => (await import('./incremental.ts')).runIncrementalBench(),
  filings: async () => (await import('./filings.ts')).runFilingsBench(),
  cli: async () => (await import('./cli.ts')).runCliBench(),
  'dag-page': async () => (await import('./dag-page.ts')).runDagPageBench(),
  gantt: async () => (await import('./gantt.ts')).runGanttBench(),
  // CDC latency and throughput, then one incremental run beside a full snapshot run (`--cdc-only` skips the latter).
  freshness: async () => {
    const args = process.argv.slice(3);
    const cdc = await (await import('./freshness.ts')).runFreshnessBench(args.filter((a) => a !== '--cdc-only'));
    if (args.includes('--cdc-only')) return { cdc };
    return { cdc, incremental: await (await import('./incremental.ts')).runIncrementalBench() };
  },
};

const name = process.argv[2] ?? 'engine';
const bench = benches[name];
if (!bench) {
  process.stderr.write(`unknown benchmark '${name}'; have: ${Object.keys(benches).join(', ')}\n`);
  process.exit(2);
}
const result = await bench();
process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
process.exit(0);
