/**
 * Group commit: callers push one item each and await its own result, while items that
 * arrive during a flush are written together by a later one. An idle batcher flushes as soon
 * as the event loop has run the I/O callbacks at hand, so a lone item waits for no timer; under
 * load one transaction carries many items,
 * which is what lifts store-backed dispatch above one commit per task. One flush at a time:
 * overlapping flushes only made the batches smaller.
 */
export class Batcher<T, R> {
  #pending: { item: T; resolve: (r: R) => void; reject: (e: unknown) => void }[] = [];
  #flushing = false;

  constructor(
    private readonly flush: (items: T[]) => Promise<R[]>,
    private readonly maxBatch = 500,
  ) {}

  push(item: T): Promise<R> {
    return new Promise<R>((resolve, reject) => {
      this.#pending.push({ item, resolve, reject });
      if (this.#flushing) return;
      this.#flushing = true;
      // After the I/O callbacks of this turn of the event loop: the replies that free several
      // worker slots often arrive in one read, and their items then share the first flush.
      setImmediate(() => void this.#drain());
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#pending.length) {
        const batch = this.#pending.splice(0, this.maxBatch);
        try {
          const results = await this.flush(batch.map((p) => p.item));
          batch.forEach((p, i) => p.resolve(results[i]!));
        } catch (err) {
          for (const p of batch) p.reject(err);
        }
      }
    } finally {
      this.#flushing = false;
    }
  }
}
