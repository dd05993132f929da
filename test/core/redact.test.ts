import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../core/config.ts';
import { createLogger } from '../../core/log.ts';
import { maskSecrets, maskUrl } from '../../core/redact.ts';

describe('maskUrl and maskSecrets', () => {
  it('mask the password of database and Redis URLs, in the user info and in the query', () => {
    expect(maskUrl('postgres://app:s3cret@db:5432/hub?sslmode=require')).toBe('postgres://app:***@db:5432/hub?sslmode=require');
    expect(maskUrl('postgresql://app@db/hub?password=s3cret&sslmode=require')).toBe('postgresql://app@db/hub?password=***&sslmode=require');
    expect(maskUrl('redis://:s3cret@cache:6379/0')).toBe('redis://:***@cache:6379/0');
    expect(maskUrl('rediss://default:p@ss@cache:6380')).toBe('rediss://default:***@cache:6380');
    expect(maskUrl('redis://cache:6379?password=s3cret')).toBe('redis://cache:6379?password=***');
    expect(maskUrl('postgres://app@db/hub?Pass%77ord=s3cret')).toBe('postgres://app@db/hub?Pass%77ord=***');
    expect(maskUrl('http://127.0.0.1:8080/runs/3?offset=500')).toBe('http://127.0.0.1:8080/runs/3?offset=500');
  });

  it('mask tokens in query strings however the key is encoded, and bearer tokens', () => {
    for (const key of ['token', 'TOKEN', '%74oken', 'to%6Ben', 'tok%65n', 'api_key', 'secret']) {
      expect(maskSecrets(`/api/dags?${key}=abc123&dag=x`), key).toBe(`/api/dags?${key}=***&dag=x`);
    }
    expect(maskSecrets('Authorization: Bearer abc.def-123')).toBe('Authorization: Bearer ***');
    expect(maskSecrets('host=db user=app password=s3cret dbname=hub')).toBe('host=db user=app password=*** dbname=hub');
    expect(maskSecrets('limit=5 state=failed')).toBe('limit=5 state=failed');
  });
});

describe('the logger', () => {
  it('prints no password or token, whoever logs it and however', () => {
    const lines: string[] = [];
    const log = createLogger('debug', new Writable({ write: (chunk, _enc, done) => done(void lines.push(String(chunk))) }));
    log.info({ url: 'postgres://app:pw-one@db/hub' }, 'connecting to redis://:pw-two@cache:6379');
    log.warn({ nested: { list: ['redis://cache?password=pw-three'] } }, 'retrying');
    const err = Object.assign(new Error('connect to postgres://app:pw-four@db failed'), { code: 'ECONNREFUSED', url: 'postgres://x?password=pw-five' });
    log.error({ err }, 'failed');
    log.info('request %s', '/api/dags?%74oken=pw-six');
    const text = lines.join('');
    for (const secret of ['pw-one', 'pw-two', 'pw-three', 'pw-four', 'pw-five', 'pw-six']) expect(text).not.toContain(secret);
    expect(text).toContain('postgres://app:***@db/hub');
    const logged = JSON.parse(lines[2]!) as { err: { type: string; code: string; message: string } };
    expect(logged.err).toMatchObject({ type: 'Error', code: 'ECONNREFUSED', message: 'connect to postgres://app:***@db failed' });
  });
});

describe('the server settings', () => {
  it('read a read-only token only beside an operator token, and the proxy trust as Fastify takes it', () => {
    const operator = 'operator-token-0123456789';
    expect(() => loadConfig({ HUBFLOW_API_READ_TOKEN: 'read-only-token-0123456789' })).toThrow(ConfigError);
    expect(() => loadConfig({ HUBFLOW_API_TOKEN: operator, HUBFLOW_API_READ_TOKEN: operator })).toThrow(/must differ/);
    expect(loadConfig({ HUBFLOW_API_TOKEN: operator, HUBFLOW_API_READ_TOKEN: 'read-only-token-0123456789' }).HUBFLOW_API_READ_TOKEN).toBe(
      'read-only-token-0123456789',
    );
    expect(loadConfig({}).HUBFLOW_TRUST_PROXY).toBe(false);
    expect(loadConfig({ HUBFLOW_TRUST_PROXY: 'true' }).HUBFLOW_TRUST_PROXY).toBe(true);
    expect(loadConfig({ HUBFLOW_TRUST_PROXY: '2' }).HUBFLOW_TRUST_PROXY).toBe(2);
    expect(loadConfig({ HUBFLOW_TRUST_PROXY: '10.0.0.0/8, 127.0.0.1' }).HUBFLOW_TRUST_PROXY).toBe('10.0.0.0/8, 127.0.0.1');
    expect(loadConfig({}).HUBFLOW_BOARD_WRITABLE).toBe(false);
    expect(loadConfig({ HUBFLOW_BOARD_WRITABLE: 'true' }).HUBFLOW_BOARD_WRITABLE).toBe(true);
    expect(() => loadConfig({ HUBFLOW_BOARD_WRITABLE: 'yes' })).toThrow(/HUBFLOW_BOARD_WRITABLE/);
  });
});
