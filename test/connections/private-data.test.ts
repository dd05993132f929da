import { chmod, mkdir, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import type { ResolvedService } from '../../server/connections/instance.ts';
import { resolvePostgres } from '../../server/connections/postgres.ts';

/**
 * The embedded PostgreSQL's folder holds its password (instance.json) and every table: only
 * hubflow's user may look, even when the folder was left 0755 before. As root, PostgreSQL runs as
 * the 'postgres' system user, which must still enter the folder (execute bit for others, no read).
 */

const log = createLogger('silent');
const homes: string[] = [];
afterAll(async () => {
  for (const home of homes) await rm(home, { recursive: true, force: true });
});

const modeOf = async (file: string) => (await stat(file)).mode & 0o777;

describe('the embedded PostgreSQL on disk', () => {
  it('keeps its data and password private and comes back on the same port', async () => {
    const home = await mkdtemp(path.join(os.tmpdir(), 'hubflow-pgmode-'));
    homes.push(home);
    const root = path.join(home, 'postgres');
    await mkdir(root, { mode: 0o755 });
    await chmod(root, 0o755);
    const config = loadConfig({ HUBFLOW_HOME: home });

    let db: ResolvedService = await resolvePostgres(config, log);
    try {
      const port = new URL(db.url).port;
      const others = process.getuid?.() === 0 ? 0o701 : 0o700;
      expect((await modeOf(root)).toString(8)).toBe(others.toString(8));
      expect(await modeOf(path.join(root, 'data'))).toBe(0o700);
      expect(await modeOf(path.join(root, 'instance.json'))).toBe(0o600);

      await db.stop();
      db = await resolvePostgres(config, log);
      expect(new URL(db.url).port).toBe(port);
    } finally {
      await db.stop();
    }
  });
});
