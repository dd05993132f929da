/**
 * What a jsonb column (a run's conf, a task's result) can keep. JSON.stringify accepts strings
 * that PostgreSQL refuses (U+0000, a lone surrogate) and refuses values a task may return
 * (BigInt, a cycle); both are found here, before the store is asked, with the place in the
 * value, so the error names it instead of surfacing as a failed write.
 */

/** How deep a run's conf may nest: parameters, not documents. */
export const MAX_CONF_DEPTH = 64;
/** How deep a task's result may nest; PostgreSQL's own parser gives up past about 10,000. */
export const MAX_RESULT_DEPTH = 1_000;

export type Storable = { json: string } | { problem: string };

// Characters jsonb cannot hold: U+0000, and a surrogate with no partner (\p{Cs} matches only those under /u).
const UNSTORABLE_CHAR = /\u0000|\p{Cs}/u;
// JSON.stringify writes both as \u escapes; their absence spares the walk below.
const SUSPECT_ESCAPE = /\\u(?:0000|d[89a-f])/i;

/** The value as JSON text, or why it cannot be stored, naming where in it (`root.a[2].b`). */
export function toStorableJson(value: unknown, root: string, maxDepth: number): Storable {
  let json: string;
  try {
    json = JSON.stringify(value ?? null);
  } catch (err) {
    // Nesting deep enough to exhaust the stack: say where it goes too deep (the walk has no recursion).
    const deep = err instanceof RangeError ? findProblem(value, root, maxDepth) : undefined;
    return { problem: deep ?? `${root} cannot be written as JSON: ${err instanceof Error ? err.message.split('\n')[0] : String(err)}` };
  }
  if (!SUSPECT_ESCAPE.test(json) && depthAtMost(json, maxDepth)) return { json };
  const problem = findProblem(JSON.parse(json) as unknown, root, maxDepth);
  return problem ? { problem } : { json };
}

/** Whether the JSON text nests no deeper than the limit: one pass, strings skipped. */
function depthAtMost(json: string, limit: number): boolean {
  // Each level takes two characters at least.
  if (json.length <= 2 * limit) return true;
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) inString = true;
    else if (c === OPEN_ARRAY || c === OPEN_OBJECT) {
      if (++depth > limit) return false;
    } else if (c === CLOSE_ARRAY || c === CLOSE_OBJECT) depth--;
  }
  return true;
}

// Character codes of '"', '\\', '[', ']', '{' and '}'.
const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const OPEN_ARRAY = 0x5b;
const CLOSE_ARRAY = 0x5d;
const OPEN_OBJECT = 0x7b;
const CLOSE_OBJECT = 0x7d;

function findProblem(parsed: unknown, root: string, maxDepth: number): string | undefined {
  const stack: [value: unknown, path: string, depth: number][] = [[parsed, root, 0]];
  for (let next = stack.pop(); next; next = stack.pop()) {
    const [value, path, depth] = next;
    if (typeof value === 'string') {
      const bad = badChar(value);
      if (bad) return `${shorten(path)} holds ${bad}, which the store cannot keep`;
    }
    if (typeof value !== 'object' || value === null) continue;
    if (depth >= maxDepth) return `${shorten(path)} nests deeper than ${maxDepth} levels`;
    for (const [key, child] of Object.entries(value)) {
      const bad = badChar(key);
      if (bad) return `${shorten(path)} has a key holding ${bad}, which the store cannot keep`;
      stack.push([child, Array.isArray(value) ? `${path}[${key}]` : `${path}.${key}`, depth + 1]);
    }
  }
  return undefined;
}

function badChar(text: string): string | undefined {
  const found = UNSTORABLE_CHAR.exec(text)?.[0];
  if (found === undefined) return undefined;
  const code = found.charCodeAt(0).toString(16).toUpperCase().padStart(4, '0');
  return found === '\u0000' ? 'the character U+0000' : `a lone surrogate (U+${code})`;
}

/** A path deep enough to be the problem is too long to read whole. */
function shorten(path: string): string {
  return path.length <= 120 ? path : `${path.slice(0, 60)}…${path.slice(-50)}`;
}
