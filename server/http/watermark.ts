/**
 * "What changed since the last look" over timestamps set by other processes. A row stamped
 * before its transaction commits can become visible after a later-stamped one, so each look
 * reaches `overlapMs` further back than the previous one, and the keys seen in that overlap are
 * remembered so that nothing is counted twice.
 */
export class Watermark {
  #mark: Date;
  readonly #seen = new Map<string, number>();

  constructor(
    start: Date,
    readonly overlapMs: number,
  ) {
    this.#mark = start;
  }

  /** The exclusive lower bound for the next query. */
  get from(): Date {
    return new Date(this.#mark.getTime() - this.overlapMs);
  }

  /** True the first time a key is offered; `at` is the value of the column the query filters on. */
  fresh(key: string, at: Date): boolean {
    if (this.#seen.has(key)) return false;
    this.#seen.set(key, at.getTime());
    return true;
  }

  /** Moves the mark to `to` and forgets the keys no query from there can return again. */
  advance(to: Date): void {
    if (to.getTime() > this.#mark.getTime()) this.#mark = to;
    // Strictly before: PostgreSQL keeps microseconds, so a row at the same millisecond may still match.
    const bound = this.from.getTime();
    for (const [key, at] of this.#seen) if (at < bound) this.#seen.delete(key);
  }

  get remembered(): number {
    return this.#seen.size;
  }
}
