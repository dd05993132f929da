/**
 * Group commit: callers push one item each and await its own result, while items that
 * arrive during a flush are written together by a later one. An idle batcher flushes at
 * once, so a lone item pays no waiting (deferring the flush to the end of the event loop's turn,
 * to gather more items, cost a chain of tasks 1 ms per handoff); under load one transaction
 * carries many items,
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
      void this.#drain();
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
