/*
 * The one classification of PostgreSQL's SQLSTATE codes that hubflow acts on. Each class says
 * what the error means for the caller; each caller decides from the classes what it does
 * (rerun a transaction, drop a connection, wait out an outage).
 */

/** The SQLSTATE of an error from pg, if it carries one. */
export function sqlStateOf(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && /^[0-9A-Z]{5}$/.test(code) ? code : undefined;
}

/**
 * The transaction lost a race with another one and did not happen: a serialization failure
 * (40001) or a deadlock (40P01). Running it again is the documented remedy.
 */
export function isConflict(code: string | undefined): boolean {
  return code === '40001' || code === '40P01';
}

/**
 * The server is going away or not back yet: admin shutdown (57P01), crash shutdown (57P02),
 * starting up (57P03). The session is over; the next connection may reach a server again.
 */
export function isServerRestarting(code: string | undefined): boolean {
  return code === '57P01' || code === '57P02' || code === '57P03';
}

/** The server refuses new sessions for now: too many connections (53300). */
export function isServerFull(code: string | undefined): boolean {
  return code === '53300';
}

/**
 * The connection can no longer be used: no SQLSTATE at all (a reset or closed socket), a
 * connection exception (class 08), or the server ending the session (class 57P: shutdowns,
 * starting up, database dropped, idle timeout). Any other SQL error leaves it usable.
 */
export function isSessionLost(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code !== 'string' || code.startsWith('08') || code.startsWith('57P');
}

/**
 * A statement or transaction that failed this way did not happen and may be sent again on a
 * new connection: a conflict, or a server restart (failover) between its statements.
 */
export function isRetriedTransaction(err: unknown): boolean {
  const code = sqlStateOf(err);
  return isConflict(code) || isServerRestarting(code);
}

/** The server cannot be used right now, though it exists and would accept us: an outage to wait out. */
export function isServerUnavailable(code: string | undefined): boolean {
  return isServerRestarting(code) || isServerFull(code);
}
