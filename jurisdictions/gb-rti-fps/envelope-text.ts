/**
 * Text-level helpers for cutting a GovTalk message apart and putting valid documents back
 * together: which elements are still open at a point, and where the IRenvelope starts, with the
 * namespace declarations it inherits (a document made of the IRenvelope alone must declare them).
 */

const TAG = /<!--[\s\S]*?-->|<\?[\s\S]*?\?>|<!\[CDATA\[[\s\S]*?\]\]>|<!DOCTYPE[^>]*>|<(\/?)([A-Za-z_][\w.:-]*)((?:[^>"']|"[^"]*"|'[^']*')*)>/g;

/** Qualified names of the elements open at the end of `text`, outermost first. */
export function openElements(text: string): string[] {
  const stack: string[] = [];
  for (const m of text.matchAll(TAG)) {
    if (!m[2]) continue;
    if (m[1]) stack.pop();
    else if (!m[3]!.endsWith('/')) stack.push(m[2]);
  }
  return stack;
}

/** Closing tags for elements left open, innermost first. */
export const closingTags = (open: readonly string[]): string =>
  open
    .toReversed()
    .map((name) => `</${name}>`)
    .join('\n');

function declarations(startTag: string): Map<string, string> {
  const decls = new Map<string, string>();
  for (const m of startTag.matchAll(/\sxmlns(?::([\w.-]+))?\s*=\s*("([^"]*)"|'([^']*)')/g)) decls.set(m[1] ?? '', m[3] ?? m[4] ?? '');
  return decls;
}

export interface IrEnvelopeStart {
  /** Offsets of the start tag in the text searched. */
  readonly start: number;
  readonly end: number;
  /** 1-based line of the start tag. */
  readonly line: number;
  readonly namespace: string | null;
  readonly closeTag: string;
  /** The start tag with the ancestors' namespace declarations it relies on added. */
  readonly standaloneTag: string;
}

export function findIrEnvelope(text: string): IrEnvelopeStart | null {
  const m = /<([A-Za-z_][\w.-]*:)?IRenvelope(?=[\s/>])((?:[^>"']|"[^"]*"|'[^']*')*)>/.exec(text);
  if (!m) return null;
  const prefix = (m[1] ?? '').replace(/:$/, '');
  const own = declarations(m[0]);
  const inherited = new Map<string, string>();
  for (const t of text.slice(0, m.index).matchAll(TAG)) if (t[2] && !t[1]) for (const [p, uri] of declarations(t[0])) inherited.set(p, uri);
  const missing = [...inherited].filter(([p]) => !own.has(p)).map(([p, uri]) => ` ${p ? `xmlns:${p}` : 'xmlns'}="${uri}"`);
  const closeAt = m[0].endsWith('/>') ? m[0].length - 2 : m[0].length - 1;
  let line = 1;
  for (let i = text.indexOf('\n'); i !== -1 && i < m.index; i = text.indexOf('\n', i + 1)) line++;
  return {
    start: m.index,
    end: m.index + m[0].length,
    line,
    namespace: own.get(prefix) ?? inherited.get(prefix) ?? null,
    closeTag: `</${m[1] ?? ''}IRenvelope>`,
    standaloneTag: `${m[0].slice(0, closeAt)}${missing.join('')}${m[0].slice(closeAt)}`,
  };
}
