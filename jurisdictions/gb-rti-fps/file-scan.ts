import { createReadStream } from 'node:fs';

/**
 * Reads a GovTalk FPS message in pieces so that a file of a million employees never sits in
 * memory: the text before the first `<Employee>` (the head), the employees in batches, and the
 * text after the last one (the tail). The pieces are verbatim and contiguous, so line numbers
 * can be carried back to the file. Employees are found by their tags, whatever the prefix.
 */

export interface ScannedEmployee {
  /** Offset of the `<Employee` in the batch text, and the element's length. */
  readonly offset: number;
  readonly length: number;
  /** 1-based line of the file the element starts on, and the line it ends on. */
  readonly line: number;
  readonly endLine: number;
}

export type ScanEvent =
  | { readonly kind: 'head'; readonly text: string }
  | { readonly kind: 'batch'; readonly text: string; readonly line: number; readonly employees: readonly ScannedEmployee[] }
  | { readonly kind: 'tail'; readonly text: string; readonly line: number };

const EMPLOYEE_START = /<([A-Za-z_][\w.-]*:)?Employee[\s/>]/;

function countLines(text: string, from = 0, to = text.length): number {
  let n = 0;
  for (let i = text.indexOf('\n', from); i !== -1 && i < to; i = text.indexOf('\n', i + 1)) n++;
  return n;
}

export interface ScanLimits {
  /** A batch closes at this many employees or this much text, whichever comes first. */
  readonly batchRecords: number;
  readonly batchChars: number;
  /** Bytes read from the file at a time. */
  readonly readBytes: number;
}

const LIMITS: ScanLimits = { batchRecords: 5_000, batchChars: 8 << 20, readBytes: 1 << 20 };

export async function* scanFps(path: string, limits: ScanLimits = LIMITS): AsyncGenerator<ScanEvent> {
  let buf = '';
  let line = 1; // line of buf[0]
  let state: 'head' | 'employees' | 'tail' = 'head';
  let prefix = '';
  let batch: string[] = [];
  let batchChars = 0;
  let batchLine = 0;
  let employees: ScannedEmployee[] = [];

  function* flushBatch(): Generator<ScanEvent> {
    if (!employees.length) return;
    yield { kind: 'batch', text: batch.join(''), line: batchLine, employees };
    batch = [];
    batchChars = 0;
    employees = [];
  }

  /** Consumes what it can of `buf`, leaving an element that is not complete yet for the next chunk. */
  function* consume(ended: boolean): Generator<ScanEvent, void> {
    if (state === 'head') {
      const m = EMPLOYEE_START.exec(buf);
      if (!m) return;
      prefix = m[1] ?? '';
      yield { kind: 'head', text: buf.slice(0, m.index) };
      line += countLines(buf, 0, m.index);
      buf = buf.slice(m.index);
      state = 'employees';
    }
    if (state !== 'employees') return;
    const open = `<${prefix}Employee`;
    const close = `</${prefix}Employee>`;
    let p = 0;
    for (;;) {
      // Whitespace and comments between employees belong to the batch, so the text stays verbatim.
      let q = p;
      let partial = false;
      for (;;) {
        while (q < buf.length && /\s/.test(buf[q]!)) q++;
        if (!buf.startsWith('<!--', q)) break;
        const end = buf.indexOf('-->', q);
        if (end === -1) {
          partial = true;
          break;
        }
        q = end + 3;
      }
      if (q >= buf.length || ((partial || buf.length - q < open.length + 1) && !ended)) break;
      if (!buf.startsWith(open, q) || !/[\s/>]/.test(buf[q + open.length] ?? '')) {
        state = 'tail';
        break;
      }
      const startTagEnd = buf.indexOf('>', q);
      if (startTagEnd === -1) break;
      const end = buf[startTagEnd - 1] === '/' ? startTagEnd + 1 : ((i) => (i === -1 ? -1 : i + close.length))(buf.indexOf(close, startTagEnd));
      if (end === -1) break;
      if (!employees.length) batchLine = line;
      const gap = countLines(buf, p, q);
      const inside = countLines(buf, q, end);
      const offset = batchChars + (q - p);
      employees.push({ offset, length: end - q, line: line + gap, endLine: line + gap + inside });
      const piece = buf.slice(p, end);
      batch.push(piece);
      batchChars += piece.length;
      line += gap + inside;
      p = end;
      if (employees.length >= limits.batchRecords || batchChars >= limits.batchChars) yield* flushBatch();
    }
    buf = buf.slice(p);
  }

  const stream = createReadStream(path, { encoding: 'utf8', highWaterMark: limits.readBytes });
  for await (const chunk of stream) {
    buf += chunk as string;
    yield* consume(false);
  }
  yield* consume(true);
  if (state === 'head') {
    // No employee at all: the whole file is the head.
    yield { kind: 'head', text: buf };
    yield { kind: 'tail', text: '', line: line + countLines(buf) };
    return;
  }
  yield* flushBatch();
  yield { kind: 'tail', text: buf, line };
}
