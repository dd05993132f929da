import type { Resource, ResourceSettings } from './resources.ts';

const NONE: Readonly<Record<string, unknown>> = Object.freeze({});

/**
 * The opened handles of the declared resources, shared by every task of the process: each is
 * opened on the first task that names it in `uses`, with only the settings it declared, and
 * closed at shutdown.
 */
export class ResourceHandles {
  readonly #opened = new Map<string, { resource: Resource; handle: Promise<unknown> }>();

  constructor(private readonly settings: ResourceSettings) {}

  /** The handle of `resource`, opening it on first use; a failed open is tried again by the next task. */
  handle(resource: Resource): Promise<unknown> {
    const open = this.#opened.get(resource.id);
    if (open) return open.handle;
    const picked = Object.fromEntries(resource.settings.map((key) => [key, this.settings[key]]));
    const handle = Promise.resolve().then(() => resource.open?.(Object.freeze(picked)));
    this.#opened.set(resource.id, { resource, handle });
    handle.catch(() => this.#opened.delete(resource.id));
    return handle;
  }

  /** Each named handle of a task, by the names it gave them. */
  async named(pairs: readonly (readonly [string, Resource])[]): Promise<Readonly<Record<string, unknown>>> {
    if (!pairs.length) return NONE;
    const handles = await Promise.all(pairs.map(([, r]) => this.handle(r)));
    return Object.freeze(Object.fromEntries(pairs.map(([name], i) => [name, handles[i]])));
  }

  async close(): Promise<void> {
    const opened = [...this.#opened.values()];
    this.#opened.clear();
    await Promise.allSettled(
      opened.map(async ({ resource, handle }) => {
        const h = await handle.catch(() => undefined);
        if (h !== undefined) await resource.close?.(h);
      }),
    );
  }
}
