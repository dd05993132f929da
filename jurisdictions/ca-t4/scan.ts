import { XMLParser } from 'fast-xml-parser';

/**
 * Reads a Submission one record at a time: finds each element by its tags and parses just that
 * fragment, so a file of a million slips never becomes one object tree, and every record keeps
 * the line it starts on.
 */

export interface Span {
  readonly start: number;
  readonly end: number;
}

/** Elements named `name` in text[from, to); not for elements that nest inside themselves. */
export function* spans(text: string, name: string, from = 0, to = text.length): Generator<Span> {
  const open = new RegExp(`<${name}(?=[\\s>/])`, 'g');
  open.lastIndex = from;
  const closeTag = `</${name}>`;
  for (let m = open.exec(text); m && m.index < to; m = open.exec(text)) {
    // A self-closed element has no content to read; the schema reports it if it matters.
    const tagEnd = text.indexOf('>', m.index);
    if (tagEnd > 0 && text[tagEnd - 1] === '/') {
      yield { start: m.index, end: tagEnd + 1 };
      open.lastIndex = tagEnd + 1;
      continue;
    }
    const close = text.indexOf(closeTag, m.index);
    if (close < 0 || close + closeTag.length > to) return;
    yield { start: m.index, end: close + closeTag.length };
    open.lastIndex = close + closeTag.length;
  }
}

export type Node = { readonly [name: string]: string | Node | undefined };

// Values stay text ('046454286' keeps its zero); entities are decoded.
const parser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, trimValues: true });

/** The element's content as nested objects of text. */
export function parseSpan(text: string, span: Span, name: string): Node {
  const parsed = parser.parse(text.slice(span.start, span.end)) as Record<string, unknown>;
  const node = parsed[name];
  return typeof node === 'object' && node !== null ? (node as Node) : {};
}

/** Text of a child by path ('T4_AMT/empt_incamt'); undefined when absent or not text. */
export function textAt(node: Node, path: string): string | undefined {
  let at: string | Node | undefined = node;
  for (const part of path.split('/')) {
    if (typeof at !== 'object') return undefined;
    at = at[part];
  }
  return typeof at === 'string' ? at : typeof at === 'number' ? String(at) : undefined;
}

/** Whether a child element is present at all (empty or not). */
export function has(node: Node, path: string): boolean {
  let at: string | Node | undefined = node;
  for (const part of path.split('/')) {
    if (typeof at !== 'object' || !(part in at)) return false;
    at = at[part];
  }
  return true;
}

/** Line numbers from offsets, by binary search over the newline positions. */
export function lineIndex(text: string): (offset: number) => number {
  const starts = [0];
  for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) starts.push(i + 1);
  return (offset) => {
    let lo = 0;
    let hi = starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  };
}
