import { createReadStream } from 'node:fs';

/**
 * Reads a file line by line without loading it whole, keeping what readline hides: whether
 * each line ended in CR LF or a bare LF. Bytes are read as latin1 so that one character is
 * one byte: record lengths are byte counts and a non-ASCII byte stays visible.
 */

export interface Line {
  /** 1-based. */
  readonly number: number;
  /** Without the line ending. */
  readonly text: string;
  /** 'cut': no line ending within MAX_LINE bytes; the text is a piece of a longer run. */
  readonly ending: 'crlf' | 'lf' | 'none' | 'cut';
}

/** A file without line breaks must not be held whole: longer runs are handed out in pieces. */
const MAX_LINE = 64 * 1024;

export async function* readLines(path: string): AsyncGenerator<Line> {
  let carry = '';
  let number = 0;
  for await (const chunk of createReadStream(path, { encoding: 'latin1', highWaterMark: 1 << 20 })) {
    const text = carry + (chunk as string);
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const crlf = nl > start && text.charCodeAt(nl - 1) === 13;
      yield { number: ++number, text: text.slice(start, crlf ? nl - 1 : nl), ending: crlf ? 'crlf' : 'lf' };
      start = nl + 1;
    }
    carry = text.slice(start);
    while (carry.length > MAX_LINE) {
      yield { number: ++number, text: carry.slice(0, MAX_LINE), ending: 'cut' };
      carry = carry.slice(MAX_LINE);
    }
  }
  if (carry) yield { number: ++number, text: carry.endsWith('\r') ? carry.slice(0, -1) : carry, ending: 'none' };
}
