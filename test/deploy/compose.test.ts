import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Ajv } from 'ajv';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';

/**
 * No Docker daemon runs here, so the compose file is checked the way `docker compose config`
 * would start: against the Compose Specification's own schema (vendored beside this file), and
 * then for what hubflow needs of it.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const read = (file: string) => readFileSync(path.join(root, file), 'utf8');

interface Service {
  command?: string[];
  environment?: Record<string, string | number | null>;
  volumes?: string[];
  healthcheck?: { test?: string[]; disable?: boolean };
  profiles?: string[];
  secrets?: string[];
}
interface Compose {
  services: Record<string, Service>;
  volumes: Record<string, unknown>;
  secrets: Record<string, { environment?: string }>;
}

// Compose resolves YAML merge keys (<<) before it validates.
const text = read('docker-compose.yml');
const compose = parse(text, { merge: true }) as Compose;
const HUBFLOW_SERVICES = ['scheduler', 'worker', 'server'] as const;

function validator() {
  const schema = JSON.parse(read('test/deploy/compose-spec.json')) as object;
  // The schema names its draft-07 meta-schema by an https URL Ajv does not know; the schema itself is draft-07.
  return new Ajv({ allErrors: true, strict: false, validateSchema: false }).compile(schema);
}

/** Every setting core/config.ts declares: the keys of its schema object. */
function configKeys(): string[] {
  const source = read('core/config.ts');
  const keys = [...source.matchAll(/^ {4}((?:HUBFLOW|SNOWFLAKE)_[A-Z0-9_]+):/gm)].map((m) => m[1]!);
  // Those with a default come back from an empty environment: a key the pattern missed would show here.
  for (const key of Object.keys(loadConfig({}))) expect(keys).toContain(key);
  return keys;
}

describe('docker-compose.yml', () => {
  it('is valid against the Compose Specification schema, which does catch a misspelt key', () => {
    const validate = validator();
    expect(validate(compose), JSON.stringify(validate.errors, null, 2)).toBe(true);
    const misspelt = structuredClone(compose);
    (misspelt.services.worker as Record<string, unknown>).helthcheck = { test: ['CMD', 'true'] };
    expect(validate(misspelt)).toBe(false);
  });

  it('passes every setting hubflow reads to the scheduler, the workers and the server', () => {
    const serverOnly = ['HUBFLOW_API_TOKEN', 'HUBFLOW_API_READ_TOKEN', 'HUBFLOW_TRUST_PROXY', 'HUBFLOW_BOARD_WRITABLE', 'HUBFLOW_HOST', 'HUBFLOW_PORT'];
    const keys = configKeys();
    expect(keys.length).toBeGreaterThan(30);
    for (const name of HUBFLOW_SERVICES) {
      const given = Object.keys(compose.services[name]!.environment ?? {});
      const needed = name === 'server' ? keys : keys.filter((k) => !serverOnly.includes(k));
      expect(
        needed.filter((k) => !given.includes(k)),
        name,
      ).toEqual([]);
    }
    // A setting without a value is handed on only when set: an empty string would fail validation.
    expect(text).not.toMatch(/\$\{[A-Z_]+:-\}/);
  });

  it('gives scaled workers shared staging and outbox volumes the image user owns', () => {
    for (const name of HUBFLOW_SERVICES) {
      const s = compose.services[name]!;
      expect(s.volumes, name).toEqual(
        expect.arrayContaining([`hubflow-staging:${s.environment!.HUBFLOW_STAGING_DIR}`, `hubflow-outbox:${s.environment!.HUBFLOW_OUTBOX_DIR}`]),
      );
    }
    expect(Object.keys(compose.volumes)).toEqual(expect.arrayContaining(['hubflow-staging', 'hubflow-outbox']));
    const dockerfile = read('Dockerfile');
    expect(dockerfile).toMatch(/install -d -o node -g node -m 0700 \/var\/lib\/hubflow \/var\/lib\/hubflow\/staging \/var\/lib\/hubflow\/outbox/);
    expect(dockerfile).toMatch(/^USER node$/m);
  });

  it('checks the health of scheduler, worker and server with commands that exist', () => {
    for (const name of HUBFLOW_SERVICES) {
      const check = compose.services[name]!.healthcheck;
      expect(check?.disable, name).not.toBe(true);
      expect(check?.test?.[0], name).toBe('CMD');
    }
    expect(compose.services.scheduler!.healthcheck!.test).toEqual(['CMD', 'node', 'bin/hubflow.js', 'health']);
    expect(compose.services.worker!.healthcheck!.test).toEqual(['CMD', 'node', 'bin/hubflow.js', 'health']);
    expect(compose.services.server!.healthcheck!.test!.join(' ')).toContain('http://127.0.0.1:8080/healthz');
    const help = spawnSync(process.execPath, [path.join(root, 'bin/hubflow.js'), 'health', '--help'], { encoding: 'utf8', timeout: 60_000 });
    expect(help.status).toBe(0);
  });

  it('runs Redis with noeviction, and the demo seed and the observability stack in their profiles', () => {
    expect(compose.services.redis!.command!.join(' ')).toContain('--maxmemory-policy noeviction');
    expect(compose.services['seed-hub']).toMatchObject({ profiles: ['demo'], command: expect.arrayContaining(['hub', 'seed']) });
    expect(compose.services.prometheus!.profiles).toEqual(['observability']);
    expect(compose.services.grafana!.profiles).toEqual(['observability']);
    for (const name of ['scheduler', 'worker', 'server', 'redis', 'postgres']) expect(compose.services[name]!.profiles, name).toBeUndefined();
  });

  it('mounts only files and folders that exist in the repository', () => {
    const hostPaths = Object.values(compose.services)
      .flatMap((s) => s.volumes ?? [])
      .map((v) => v.split(':')[0]!)
      .filter((source) => source.startsWith('./'));
    expect(hostPaths.length).toBeGreaterThan(4);
    for (const source of hostPaths) expect(existsSync(path.join(root, source)), source).toBe(true);
  });

  it('lets Prometheus scrape the server with the API token from a secret', () => {
    const config = parse(read('deploy/prometheus/prometheus.yml')) as {
      scrape_configs: { metrics_path: string; authorization: { credentials_file: string }; static_configs: { targets: string[] }[] }[];
    };
    const [job] = config.scrape_configs;
    expect(job!.metrics_path).toBe('/metrics');
    expect(job!.static_configs[0]!.targets).toEqual(['server:8080']);
    const secret = compose.services.prometheus!.secrets![0]!;
    expect(job!.authorization.credentials_file).toBe(`/run/secrets/${secret}`);
    expect(compose.secrets[secret]).toEqual({ environment: 'HUBFLOW_API_TOKEN' });
  });
});
