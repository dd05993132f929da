import { describe, expect, it } from 'vitest';
import { isRetriedTransaction, isServerUnavailable, isSessionLost, sqlStateOf } from '../../core/sqlstate.ts';

const pgError = (code: string) => Object.assign(new Error(code), { code });

describe('SQLSTATE classes', () => {
  it('rerun a transaction after a conflict or a server restart, nothing else', () => {
    for (const code of ['40001', '40P01', '57P01', '57P02', '57P03']) expect(isRetriedTransaction(pgError(code))).toBe(true);
    for (const code of ['23505', '53300', '55P03', '08006', '57P04', 'ECONNRESET']) expect(isRetriedTransaction(pgError(code))).toBe(false);
    expect(isRetriedTransaction(new Error('no code'))).toBe(false);
  });

  it('drop a connection without a SQLSTATE, with a connection exception or a session ended by the server', () => {
    for (const code of ['08006', '08003', '57P01', '57P04']) expect(isSessionLost(pgError(code))).toBe(true);
    expect(isSessionLost(new Error('Connection terminated'))).toBe(true);
    expect(isSessionLost(pgError('23505'))).toBe(false);
    expect(isSessionLost(pgError('40001'))).toBe(false);
  });

  it('wait out a server that restarts or is full', () => {
    for (const code of ['57P01', '57P02', '57P03', '53300']) expect(isServerUnavailable(code)).toBe(true);
    for (const code of ['57P04', '40001', '28P01', '3D000']) expect(isServerUnavailable(code)).toBe(false);
  });

  it('read the SQLSTATE only from a five-character code', () => {
    expect(sqlStateOf(pgError('40P01'))).toBe('40P01');
    expect(sqlStateOf({ code: 42 })).toBeUndefined();
    expect(sqlStateOf(undefined)).toBeUndefined();
  });
});
