import { AsyncLocalStorage } from 'node:async_hooks';
import { format } from 'node:util';
import { pino, type DestinationStream } from 'pino';
import { describeError, isSkip } from '../../core/errors.ts';
import type { Logger } from '../../core/log.ts';
import { maskSecrets } from '../../core/redact.ts';
import type { Store } from '../store/db.ts';
import { insertLogLines, type LogLine } from './task-log-store.ts';

/**
 * Each try's log: what the task logs through ctx.log and what it prints (process.stdout and
 * process.stderr writes, console.*) while it runs, kept per try in the store's task_logs.
 *
 * One worker runs many tasks at once in one process, so a write is attributed through
 * AsyncLocalStorage: the try's run is entered with its TryLog as the store, and the streams and
 * console methods, patched once per process, add to whichever try is current before writing
 * through as before. ctx.log needs no lookup: it is a logger of its own whose destination adds
 * to its try and writes through to the process's. A try that logs nothing costs a child logger
 * and no write to the store.
 */

/** Bytes of a try's first lines kept; past them, only the last TAIL_BYTES are, after a marker saying how much was cut. */
export const HEAD_BYTES = 768 * 1024;
export const TAIL_BYTES = 256 * 1024;
/** Characters of one line kept: a line of a megabyte of JSON says nothing more past this. */
export const MAX_LINE_CHARS = 64 * 1024;
/** A batch is written once it holds this many lines or bytes, or a second after its first line. */
const FLUSH_LINES = 500;
const FLUSH_BYTES = 128 * 1024;
const FLUSH_AFTER_MS = 1_000;

const INFO = 30;

const current = new AsyncLocalStorage<TryLog>();
/** True while a line already captured is written through, so it is not captured again on the way. */
let passing = false;
let installed = false;

/** The streams and console methods, once per process: each write also goes to the current try, if any. */
function installCapture(): void {
  if (installed) return;
  installed = true;
  for (const [stream, level] of [
    [process.stdout, 'stdout'],
    [process.stderr, 'stderr'],
  ] as const) {
    const write = stream.write;
    stream.write = function (this: unknown, chunk: unknown, ...rest: unknown[]) {
      const log = passing ? undefined : current.getStore();
      log?.print(level, chunk);
      return Reflect.apply(write, this, [chunk, ...rest]) as boolean;
    } as typeof stream.write;
  }
  // console writes to whatever stream it was made with (the CLI's writes to stderr, a test
  // runner's to its own): wrapped, its lines are captured with their level wherever they go.
  const methods = { log: 'info', info: 'info', debug: 'debug', warn: 'warn', error: 'error' } as const;
  for (const [method, level] of Object.entries(methods) as [keyof typeof methods, string][]) {
    const original = console[method];
    console[method] = function (this: unknown, ...args: unknown[]) {
      const log = passing ? undefined : current.getStore();
      if (!log) return Reflect.apply(original, this, args) as undefined;
      log.add(level, format(...args));
      return writingThrough(() => Reflect.apply(original, this, args) as undefined);
    };
  }
}

function writingThrough<T>(write: () => T): T {
  const was = passing;
  passing = true;
  try {
    return write();
  } finally {
    passing = was;
  }
}

/** The try a TryLog is for. */
export interface TryRef {
  id: number;
  try_number: number;
  max_tries: number;
}

type Tail = Omit<LogLine, 'seq'> & { bytes: number };

/** One try's log while it runs: lines kept within the caps, written to the store in batches. */
export class TryLog {
  /** ctx.log: the try's logger, whose lines are kept at info and above even when the process logs less. */
  readonly logger: Logger;
  #pending: LogLine[] = [];
  #pendingBytes = 0;
  #keptBytes = 0;
  #tail: Tail[] = [];
  #tailBytes = 0;
  #droppedLines = 0;
  #droppedBytes = 0;
  #seq = 0;
  readonly #partial = { stdout: '', stderr: '' };
  #writing: Promise<void> = Promise.resolve();
  #wrote = false;
  #timer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(
    private readonly db: Store,
    private readonly ti: TryRef,
    private readonly log: Logger,
  ) {
    this.logger = teeLogger(log, this);
  }

  /** Runs the try's task with this log current, so what it prints is attributed to it. */
  run<T>(fn: () => T): T {
    return current.run(this, fn);
  }

  /** A write to stdout or stderr: split into lines, the unfinished last one held until its newline or the try's end. */
  print(stream: 'stdout' | 'stderr', chunk: unknown): void {
    if (this.#closed) return;
    const text =
      typeof chunk === 'string'
        ? chunk
        : chunk instanceof Uint8Array
          ? Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength).toString('utf8')
          : String(chunk);
    const lines = (this.#partial[stream] + text).split('\n');
    let rest = lines.pop()!;
    if (rest.length > MAX_LINE_CHARS) {
      lines.push(rest);
      rest = '';
    }
    this.#partial[stream] = rest;
    for (const line of lines) this.add(stream, line.endsWith('\r') ? line.slice(0, -1) : line);
  }

  /** Adds one line (a log record, a console call, a printed line), masked, within the caps. */
  add(level: string, text: string): void {
    if (this.#closed) return;
    // Masked before it is cut, so a secret is never left half-shown at the cut.
    let line = maskSecrets(text.length > MAX_LINE_CHARS + 1_024 ? text.slice(0, MAX_LINE_CHARS + 1_024) : text);
    if (line.length > MAX_LINE_CHARS) line = `${line.slice(0, MAX_LINE_CHARS)} … (${text.length - MAX_LINE_CHARS} more characters)`;
    // PostgreSQL's text cannot hold NUL.
    if (line.includes('\u0000')) line = line.replaceAll('\u0000', '\uFFFD');
    const bytes = Buffer.byteLength(line) + 1;
    const at = new Date();
    if (this.#keptBytes + bytes <= HEAD_BYTES && !this.#tail.length) {
      this.#keptBytes += bytes;
      this.#queue({ seq: ++this.#seq, at, level, line }, bytes);
      return;
    }
    this.#tail.push({ at, level, line, bytes });
    this.#tailBytes += bytes;
    while (this.#tailBytes > TAIL_BYTES && this.#tail.length > 1) {
      const dropped = this.#tail.shift()!;
      this.#tailBytes -= dropped.bytes;
      this.#droppedLines++;
      this.#droppedBytes += dropped.bytes - 1;
    }
  }

  /**
   * Ends the try's log: what is still held is written, with a line saying how the try ended
   * when it threw, and the cut when one was made. Resolves once written; undefined when the try
   * logged nothing, so it costs no write at all. Lines after this (a task still running past
   * its timeout) are no longer kept.
   */
  end(outcome: 'success' | { error: unknown } = 'success'): Promise<void> | undefined {
    if (this.#closed) return this.#wrote ? this.#writing : undefined;
    for (const stream of ['stdout', 'stderr'] as const) if (this.#partial[stream]) this.add(stream, this.#partial[stream]);
    if (outcome !== 'success') this.add(...this.#outcomeLine(outcome.error));
    this.#closed = true;
    if (this.#droppedLines) {
      const marker = `… truncated ${this.#droppedBytes} bytes (${this.#droppedLines} lines): a try keeps its first ${HEAD_BYTES / 1024} KiB and last ${TAIL_BYTES / 1024} KiB`;
      this.#queue({ seq: ++this.#seq, at: this.#tail[0]!.at, level: 'warn', line: marker }, marker.length);
    }
    for (const { bytes, ...line } of this.#tail.splice(0)) this.#queue({ seq: ++this.#seq, ...line }, bytes);
    this.#flush();
    return this.#wrote ? this.#writing : undefined;
  }

  #outcomeLine(error: unknown): [string, string] {
    const { name, message, stack } = describeError(error);
    if (isSkip(error)) return ['info', `skipped: ${message}`];
    if (name === 'TaskCancelledError') return ['warn', `cancelled: ${message}`];
    return ['error', `try ${this.ti.try_number} of ${this.ti.max_tries} failed: ${stack ?? `${name}: ${message}`}`];
  }

  #queue(line: LogLine, bytes: number): void {
    this.#pending.push(line);
    this.#pendingBytes += bytes;
    if (this.#closed) return;
    if (this.#pending.length >= FLUSH_LINES || this.#pendingBytes >= FLUSH_BYTES) this.#flush();
    else if (!this.#timer) {
      // Outside the try's context: what the timer and the write do is none of the task's output.
      this.#timer = current.exit(() => setTimeout(() => this.#flush(), FLUSH_AFTER_MS));
      this.#timer.unref();
    }
  }

  #flush(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#pending.length) return;
    const batch = this.#pending;
    this.#pending = [];
    this.#pendingBytes = 0;
    this.#wrote = true;
    current.exit(() => {
      // Chained, so batches land in order; a failed write loses its lines, never the try.
      this.#writing = this.#writing
        .then(() => insertLogLines(this.db, this.ti.id, this.ti.try_number, batch))
        .catch((err: unknown) =>
          this.log.warn({ err, event: 'task_log_unwritten', lines: batch.length }, `${batch.length} lines of this try's log could not be stored`),
        );
    });
  }
}

/** Starts a try's log (patching the process's streams on first use). */
export function startTryLog(db: Store, ti: TryRef, log: Logger): TryLog {
  installCapture();
  return new TryLog(db, ti, log);
}

/**
 * A child of the try's logger whose lines go to the try's log and, when the process logs that
 * level, on to the process's destination as before. pino writes through `symbols.streamSym`
 * (its documented symbols), inherited by the child's own children, so `ctx.log.child()` is kept too.
 */
function teeLogger(log: Logger, tryLog: TryLog): Logger {
  const target = (log as unknown as Record<symbol, DestinationStream>)[pino.symbols.streamSym]!;
  const shown = log.levelVal;
  let skip: Set<string> | undefined;
  const tee: DestinationStream & { flush(cb: (err?: Error) => void): void } = {
    write(s: string) {
      let record: Record<string, unknown> | undefined;
      try {
        record = JSON.parse(s) as Record<string, unknown>;
      } catch {
        record = undefined;
      }
      const level = typeof record?.level === 'number' ? record.level : INFO;
      if (level >= shown) writingThrough(() => target.write(s));
      if (!record) return tryLog.add('info', s.trimEnd());
      skip ??= new Set([...Object.keys(log.bindings()), 'level', 'time', 'msg', 'pid', 'hostname']);
      tryLog.add(pino.levels.labels[level] ?? String(level), recordLine(record, skip));
    },
    flush(cb) {
      const flush = (target as { flush?: (cb: (err?: Error) => void) => void }).flush;
      if (flush) flush.call(target, cb);
      else cb();
    },
  };
  const child = log.child({});
  (child as unknown as Record<symbol, unknown>)[pino.symbols.streamSym] = tee;
  if (shown > INFO) child.level = 'info';
  return child;
}

/** A log record as a line: its message, its own fields as JSON, an error's stack below. */
function recordLine(record: Record<string, unknown>, skip: ReadonlySet<string>): string {
  const fields: Record<string, unknown> = {};
  let stack = '';
  for (const [key, value] of Object.entries(record)) {
    if (skip.has(key)) continue;
    const err = value as { stack?: unknown } | null;
    if (key === 'err' && typeof err?.stack === 'string') stack = err.stack;
    else fields[key] = value;
  }
  const msg = typeof record.msg === 'string' ? record.msg : '';
  const extra = Object.keys(fields).length ? JSON.stringify(fields) : '';
  return `${msg}${msg && extra ? ' ' : ''}${extra}${stack ? `\n${stack}` : ''}`;
}
