import type { Readable } from 'node:stream';
import { fromCopyText } from '../../transforms/copy-text.ts';

/** Lines of a byte stream (without their newline), decoded as UTF-8 one whole line at a time. */
export async function* lines(stream: Readable): AsyncGenerator<string> {
  let carry: Buffer | null = null;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    const buf: Buffer = carry ? Buffer.concat([carry, chunk]) : chunk;
    let start = 0;
    for (let end = buf.indexOf(10, start); end >= 0; end = buf.indexOf(10, start)) {
      // A multi-byte character split across chunks is only decoded once its line is whole.
      yield buf.toString('utf8', start, end);
      start = end + 1;
    }
    carry = start < buf.length ? buf.subarray(start) : null;
  }
  if (carry?.length) yield carry.toString('utf8');
}

/**
 * Rows of a `COPY ... TO STDOUT` in PostgreSQL's text format, one array of fields per row, as
 * they arrive. The text format escapes tabs, newlines and backslashes inside values, so a raw
 * newline always ends a row and a raw tab always ends a field; NULL is `\N`.
 */
export async function* copyRows(stream: Readable): AsyncGenerator<(string | null)[]> {
  for await (const line of lines(stream)) yield splitRow(line);
}

function splitRow(line: string): (string | null)[] {
  return line.split('\t').map(fromCopyText);
}
