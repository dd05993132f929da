import { randomUUID } from 'node:crypto';
import { loadConfig } from '../core/config.ts';
import { defineDag, task } from '../server/engine/dag.ts';
import { registryOf } from '../server/engine/loader.ts';
import { createLogger } from '../core/log.ts';
import { startWorker } from '../server/processes.ts';
import { closeBenchRuntime } from './cleanup.ts';
import { openRuntime } from '../server/runtime.ts';
import { CpuMeter } from './cpu.ts';

/**
 * One `dags test`-style run of a DAG mapping a no-op over `items` elements, alone in this
 * process so that its peak RSS is the run's: the list, its expansion into instances and jobs,
 * and the worker taking them. Prints one JSON line.
 */
export async function wideFan(items: number) {
  const id = `bench_${randomUUID().replaceAll('-', '').slice(0, 10)}`;
  const config = loadConfig({ ...process.env, HUBFLOW_DB_SCHEMA: id, HUBFLOW_QUEUE_PREFIX: `hf-${id}`, HUBFLOW_LOG_LEVEL: 'warn' });
  const dag = defineDag({
    id: 'bench-wide-fan',
    tasks: {
      list: task({ run: () => Array.from({ length: items }, (_, i) => i) }),
      noop: task({ map: 'list', run: () => null }),
      join: task({ after: ['noop'], run: () => null }),
    },
  });
  const rt = await openRuntime({ config, log: createLogger('warn'), dags: registryOf([dag], []), poolSize: 10 });
  try {
    const cpu = await CpuMeter.start(rt.db, `hubflow ${id}`, rt.redis.url);
    const t0 = performance.now();
    const { run, queue } = await rt.engine.testRun(dag.id, new Date());
    const worker = startWorker(rt, { queue });
    try {
      for (;;) {
        const row = await rt.db.selectFrom('dag_runs').select('state').where('id', '=', run.id).executeTakeFirstOrThrow();
        if (row.state === 'success') break;
        if (row.state === 'failed') throw new Error(`wide fan run ${run.id} failed`);
        await new Promise((r) => setTimeout(r, 200));
        await cpu.sample();
      }
    } finally {
      await worker.close();
    }
    const seconds = (performance.now() - t0) / 1000;
    const cpuMsPerInstance = await cpu.perUnit(items + 2);
    return {
      instances: items + 2,
      seconds: Number(seconds.toFixed(2)),
      instancesPerSecond: Math.round((items + 2) / seconds),
      peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
      cpuMsPerInstance,
    };
  } finally {
    await closeBenchRuntime(rt, id);
  }
}

if (process.argv[1]?.endsWith('wide-fan.ts')) {
  const result = await wideFan(Number(process.argv[2] ?? 10_000));
  process.stdout.write(`${JSON.stringify(result)}\n`);
  process.exit(0);
}
