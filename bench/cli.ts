import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
// @ts-expect-error: plain JavaScript next to the command it serves, without type declarations.
import { builtIsCurrent } from '../bin/sources.js';

/** How fast `hubflow` starts, as GNU time sees it: wall seconds and peak resident KB of the whole process. */
const ROOT = fileURLToPath(new URL('../', import.meta.url));
const RUNS = 5;
const TIME = '/usr/bin/time';

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

interface Figures {
  medianSeconds: number;
  medianPeakKb: number;
  /** Both medians within TARGET. */
  withinTarget: boolean;
  runs: { seconds: number; peakKb: number }[];
}

/** `hubflow --help` and `hubflow dags list`, on this machine. */
const TARGET = { seconds: 0.3, peakKb: 80_000 };

/** Runs `hubflow <args>` RUNS times; an env value of undefined unsets that variable. */
function measure(args: string[], env: Record<string, string | undefined>): Figures {
  const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-cli-bench-'));
  const out = path.join(dir, 'time');
  const runs: Figures['runs'] = [];
  try {
    for (let i = 0; i < RUNS; i++) {
      const result = spawnSync(TIME, ['-o', out, '-f', '%e %M', process.execPath, path.join(ROOT, 'bin/hubflow.js'), ...args], {
        env: Object.fromEntries(Object.entries({ ...process.env, ...env }).filter(([, v]) => v !== undefined)),
        encoding: 'utf8',
      });
      if (result.error) throw new Error(`${TIME}: ${result.error.message} (the cli bench needs GNU time)`);
      if (result.status !== 0) throw new Error(`hubflow ${args.join(' ')} exited ${result.status}: ${result.stderr}`);
      const [seconds, peakKb] = readFileSync(out, 'utf8').trim().split('\n').at(-1)!.split(' ').map(Number);
      runs.push({ seconds: seconds!, peakKb: peakKb! });
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const [medianSeconds, medianPeakKb] = [median(runs.map((r) => r.seconds)), median(runs.map((r) => r.peakKb))];
  return { medianSeconds, medianPeakKb, withinTarget: medianSeconds <= TARGET.seconds && medianPeakKb <= TARGET.peakKb, runs };
}

/** A DAG folder as a user keeps one: a single TypeScript DAG importing the public API, no node_modules. */
function oneDagFolder(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'hubflow-cli-dags-'));
  writeFileSync(
    path.join(dir, 'hello.ts'),
    "import { defineDag, task } from 'hubflow';\nexport default defineDag({ id: 'hello', tasks: { say: task({ run: (ctx) => ctx.log.info('hi') }) } });\n",
  );
  return dir;
}

export async function runCliBench(): Promise<unknown> {
  // The store's pause flags are read from a schema nobody creates: `dags list` only reads it.
  const store = {
    HUBFLOW_DATABASE_URL: process.env.HUBFLOW_TEST_DATABASE_URL ?? process.env.HUBFLOW_DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    HUBFLOW_DB_SCHEMA: `bench_cli_${process.pid}`,
    HUBFLOW_LOG_LEVEL: 'warn',
  };
  const folder = oneDagFolder();
  try {
    return {
      compiled: builtIsCurrent(ROOT),
      runs: RUNS,
      target: TARGET,
      help: measure(['--help'], {}),
      dagsListOneTypeScriptDag: measure(['dags', 'list'], { ...store, HUBFLOW_DAGS_DIR: folder }),
      dagsListBundled: measure(['dags', 'list'], { ...store, HUBFLOW_DAGS_DIR: undefined }),
    };
  } finally {
    rmSync(folder, { recursive: true, force: true });
  }
}
