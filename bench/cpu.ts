import { readFileSync } from 'node:fs';
import { Redis } from 'ioredis';
import { sql, type QueryExecutorProvider } from 'kysely';

/*
 * CPU time spent for a benchmark, per party: this process, the PostgreSQL backends serving its
 * pool (found by their application name, read from /proc, so only when PostgreSQL runs on this
 * machine) and the Redis server (all of it: shared with anyone else using it meanwhile). CPU
 * time, unlike wall-clock time, does not grow when others use the same cores.
 */

const TICK_MS = 10; // USER_HZ is 100 on Linux

function procCpuMs(pid: number): number | undefined {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
  } catch {
    return undefined;
  }
}

async function redisCpuMs(redis: Redis): Promise<number> {
  const info = await redis.info('cpu');
  const field = (name: string) => Number(new RegExp(`^${name}:([\\d.]+)`, 'm').exec(info)?.[1] ?? 0);
  return (field('used_cpu_sys') + field('used_cpu_user')) * 1000;
}

export class CpuMeter {
  readonly #start = new Map<number, number>();
  readonly #last = new Map<number, number>();
  #node = process.cpuUsage();
  #redis = 0;

  private constructor(
    private readonly db: QueryExecutorProvider,
    private readonly applicationName: string,
    private readonly redis: Redis,
  ) {}

  static async start(db: QueryExecutorProvider, applicationName: string, redisUrl: string): Promise<CpuMeter> {
    const meter = new CpuMeter(db, applicationName, new Redis(redisUrl));
    await meter.sample(meter.#start);
    meter.#redis = await redisCpuMs(meter.redis);
    meter.#node = process.cpuUsage();
    return meter;
  }

  /** Reads the backends' CPU; call it now and then, since a backend's figure is gone once it exits. */
  async sample(into = this.#last): Promise<void> {
    const { rows } = await sql<{ pid: number }>`select pid from pg_stat_activity where application_name = ${this.applicationName}`.execute(this.db);
    for (const { pid } of rows) {
      const ms = procCpuMs(pid);
      if (ms !== undefined) into.set(pid, ms);
    }
  }

  /** Milliseconds of CPU per unit of work (an instance) since start. */
  async perUnit(units: number): Promise<{ nodeMs: number; postgresMs: number | null; redisServerMs: number }> {
    await this.sample();
    const node = process.cpuUsage(this.#node);
    let pg = 0;
    for (const [pid, ms] of this.#last) pg += ms - (this.#start.get(pid) ?? 0);
    const redis = (await redisCpuMs(this.redis)) - this.#redis;
    this.redis.disconnect();
    const per = (ms: number) => Number((ms / units).toFixed(3));
    return { nodeMs: per((node.user + node.system) / 1000), postgresMs: this.#last.size ? per(pg) : null, redisServerMs: per(redis) };
  }
}
