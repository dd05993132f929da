/**
 * The one place secrets are masked before anything is printed or logged: passwords in database
 * and Redis URLs (user info and `?password=`), API tokens in query strings and Authorization
 * headers. Query keys are compared decoded, so `?%74oken=` is masked like `?token=`.
 */

export const MASK = '***';

/** Query keys whose values are secrets, compared after percent-decoding and lower-casing. */
const SECRET_KEY = /(pass(word|wd)?|pwd|secret|token|api[-_]?key|private[-_]?key|credential)/;

function decodeKey(raw: string): string {
  try {
    return decodeURIComponent(raw.replaceAll('+', ' ')).trim().toLowerCase();
  } catch {
    return raw.toLowerCase();
  }
}

export const isSecretKey = (key: string): boolean => SECRET_KEY.test(decodeKey(key));

// scheme://user:password@host → scheme://user:***@host (any scheme, so redis, rediss, postgres, postgresql, amqp).
const USERINFO = /([a-z][a-z0-9+.-]*:\/\/[^\s/:@?#]*):[^\s/?#]*@/gi;
// A key=value pair in a query string (or a libpq-style connection string): the key decides.
const QUERY_PAIR = /([?&;\s]|^)([^\s=&;?#]+)=([^\s&;#]*)/g;
const BEARER = /\b(bearer)\s+[^\s,;"']+/gi;

/**
 * A text with every secret it could carry masked: URL passwords, `password=` / `token=` values
 * (however the key is percent-encoded) and bearer tokens. The rest is kept, so a log line still
 * says which host or route it was about.
 */
export function maskSecrets(text: string): string {
  if (!/[:=]|bearer/i.test(text)) return text;
  return text
    .replace(USERINFO, `$1:${MASK}@`)
    .replace(QUERY_PAIR, (whole, lead: string, key: string) => (isSecretKey(key) ? `${lead}${key}=${MASK}` : whole))
    .replace(BEARER, `$1 ${MASK}`);
}

/** A URL (database, Redis, webhook, request) fit to print: its password and secret query values masked. */
export function maskUrl(url: string): string {
  return maskSecrets(url);
}

const MAX_DEPTH = 8;

/**
 * A copy of a log record's fields with every string passed through maskSecrets, an error's
 * message, stack and cause included. Depth-limited, so a log call never overflows the stack.
 */
export function maskRecord(value: unknown, depth = 0): unknown {
  if (typeof value === 'string') return maskSecrets(value);
  if (value === null || typeof value !== 'object' || depth >= MAX_DEPTH) return value;
  if (value instanceof Error) {
    // Same prototype, so the logger still names its class; message, stack, cause and fields masked.
    const copy = Object.create(Object.getPrototypeOf(value)) as Error;
    for (const [k, v] of Object.entries(value)) (copy as unknown as Record<string, unknown>)[k] = maskRecord(v, depth + 1);
    copy.message = maskSecrets(value.message);
    if (value.stack !== undefined) copy.stack = maskSecrets(value.stack);
    if (value.cause !== undefined) copy.cause = maskRecord(value.cause, depth + 1);
    return copy;
  }
  if (Array.isArray(value)) return value.map((v) => maskRecord(v, depth + 1));
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) out[k] = maskRecord(v, depth + 1);
  return out;
}
